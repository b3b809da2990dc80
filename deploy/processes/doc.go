// Package processes runs Ork as separate operating-system processes, the way a real deployment does:
// a nats-server process with a file store, the recorder, the schedulers (two unless told) and any
// number of executors, each in its own process group with its output in a log file.
//
// It is the harness of the multi-process test and of fault tests (kill -9, SIGSTOP, restarts):
//
//	bins, err := processes.BuildBinaries(ctx, processes.BuildConfig{Root: root, Dir: t.TempDir()})
//	s, err := processes.StartStack(ctx, processes.Config{Binaries: bins, Dir: dir, NATSBase: base, DBURL: db})
//	defer s.Kill()
//	s.WaitExecutors(ctx)             // every executor is pulling
//	s.Executors[0].Kill()            // SIGKILL to the executor's whole process group
//	s.Restart(s.Executors[0])        // same spec, log appended
//	s.NATS.Kill(); s.NATS.Restart(ctx) // same ports, same store
//	s.Scheduler.Pause()              // SIGSTOP; Resume sends SIGCONT
//
// Everything here works on processes, files and URLs only; nothing imports the services.
package processes
