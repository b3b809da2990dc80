package workflow

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a workflow, located at the YAML value it is about.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Path    string `json:"path"`    // dotted location in the document, e.g. tasks.load.depends_on
	Message string `json:"message"` // names the task and field, e.g. task "load": depends_on "x": no such task
}

// Error renders the error as FILE:LINE:COL: message, leaving out the location parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, max(e.Col, 1))
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is every error found in one workflow. It implements error with one error per line, so a
// caller can print it as is, or use errors.As to reach the individual errors.
type ErrorList []*Error

// Error renders one "FILE:LINE:COL: message" per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sort orders errors by position, keeping discovery order among equal positions, and drops exact
// duplicates (the same message at the same place can be reached twice, e.g. through a YAML alias).
func (l ErrorList) sort() ErrorList {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return slices.CompactFunc(l, func(a, b *Error) bool { return *a == *b })
}

// err returns the list as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l.sort()
}
