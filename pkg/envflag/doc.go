// Package envflag defines command-line flags whose defaults come from environment variables, so
// that every Ork command reads its configuration with the same precedence: a flag overrides its
// ORK_* environment variable, which overrides the built-in default.
//
// A Set wraps a flag.FlagSet and a getenv function (os.Getenv, or a map in tests). Each method
// reads the flag's variable at once; an empty variable counts as unset. A value that does not
// parse is collected rather than returned, and Err reports all of them together, each as an
// *EnvError naming the variable and its value, so a user fixes every bad variable in one go. A bad
// variable is an error even when its flag is also given: the environment is then misconfigured
// for every other run of the command.
//
// The usage text of every flag ends in "(env NAME)".
package envflag
