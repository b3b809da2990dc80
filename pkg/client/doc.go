// Package client is the Go client of Ork and the one home of its protocol; the CLI (and the HTTP
// API) only call it. Each step is one function with a Params struct:
//
//   - Run: submit a run, follow its events to its end, cancel it when the caller is interrupted (if
//     asked), and read it back from the database once the recorder says it is there;
//   - Submit: publish one run.submitted and return once the stream has stored it;
//   - Wait: follow a run until its run.finished;
//   - Cancel, Pause, Resume: send a control request (refused at once for a run no scheduler knows),
//     and AwaitAnswer for the scheduler's answer to it.
//
// A submission or control request whose acknowledgement is lost with the connection is sent again
// with the same message id, so a call never hangs on a lost reply and never acts twice.
//
//	res, err := client.New(b).Run(ctx, client.RunParams{Submit: client.SubmitParams{Plan: plan}})
package client
