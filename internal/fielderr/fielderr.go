// Package fielderr is the error of a configuration value that is missing or
// out of bounds. It names the field, the value and the bound in the words of
// the field's owner — a Go field (SendQueue), a config file key (lag.warn) —
// never in those of a command line:
//
//	lag.warn 7s must not be above lag.alert 5s
//	SendQueue 1 must be at least 16
//	Listen is required (e.g. 127.0.0.1:8080)
//
// A command that filled fields from flags names them as its flags with
// Rename (cmd/geolab), so that no library speaks of flags.
package fielderr

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one field at fault.
type Error struct {
	// Field is the field, as its owner names it.
	Field string
	// Value is the value at fault; nil shows none (a missing field, or one
	// whose cause in Err says it).
	Value any
	// Rule says what is wrong or wanted: "must be at least", "is required".
	Rule string
	// BoundField names the field whose value is the bound, when the bound
	// is another field ("must not be above lag.alert 5s"); "" otherwise.
	BoundField string
	// Bound is the bound (16, 10s, "1..10000"); nil shows none.
	Bound any
	// Err is the cause, when another check found the fault (a name rule).
	Err error
}

// New is field's value out of bounds: Field Value Rule Bound.
func New(field string, value any, rule string, bound any) *Error {
	return &Error{Field: field, Value: value, Rule: rule, Bound: bound}
}

// Than is field's value out of bounds set by another field: Field Value
// Rule BoundField Bound.
func Than(field string, value any, rule, boundField string, bound any) *Error {
	return &Error{Field: field, Value: value, Rule: rule, BoundField: boundField, Bound: bound}
}

// Missing is a required field left empty: Field is required hint.
func Missing(field, hint string) *Error {
	rule := "is required"
	if hint != "" {
		rule += " " + hint
	}
	return &Error{Field: field, Rule: rule}
}

// Wrap is field at fault for the reason err gives: Field Value: err (value
// nil when err already shows it).
func Wrap(field string, value any, err error) *Error {
	return &Error{Field: field, Value: value, Err: err}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Value != nil {
		b.WriteString(" " + value(e.Value))
	}
	if e.Rule != "" {
		b.WriteString(" " + e.Rule)
	}
	if e.BoundField != "" {
		b.WriteString(" " + e.BoundField)
	}
	if e.Bound != nil {
		fmt.Fprintf(&b, " %v", e.Bound)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap is the cause.
func (e *Error) Unwrap() error { return e.Err }

// value shows a string quoted (an empty or spaced value stays visible) and
// anything else as %v (a time.Duration as 1.5s).
func value(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// Rename names the fields of the first *Error in err's chain as names maps
// them (a field to the flag that set it, say): the message is err's with
// that error's text rewritten, and err stays in the chain (errors.Is and
// errors.As see what they saw). Fields names does not hold keep their name;
// err without an *Error is returned as it is.
func Rename(err error, names map[string]string) error {
	var fe *Error
	if !errors.As(err, &fe) {
		return err
	}
	r, changed := *fe, false
	if n, ok := names[r.Field]; ok {
		r.Field, changed = n, true
	}
	if n, ok := names[r.BoundField]; ok && r.BoundField != "" {
		r.BoundField, changed = n, true
	}
	if !changed {
		return err
	}
	return &renamed{msg: strings.Replace(err.Error(), fe.Error(), r.Error(), 1), err: err}
}

type renamed struct {
	msg string
	err error
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }
