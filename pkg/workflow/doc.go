// Package workflow is Ork's workflow language: it reads a YAML workflow, validates it completely
// (structure, names, dependencies, types, bindings, files, size caps) and compiles it into a Plan, the
// self-contained form that is stored and submitted to the scheduler.
//
// Parsing goes through the yaml node API so that every error carries the line and column of the value
// it is about. Validation never stops at the first problem: Load and Parse return an ErrorList holding
// every error found, sorted by position, each rendered as "FILE:LINE:COL: message".
//
// Types (str, int, float, bool, date, datetime_notz, datetime_tz, datetime_utc, objects, arrays and
// named aliases) are checked statically where declared, and at run time with Type.CheckValue and
// Type.CheckJSON. Plan.Validate re-checks the structure of a Plan received from the network.
package workflow
