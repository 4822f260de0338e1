package parser

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	bkparser "github.com/moby/buildkit/frontend/dockerfile/parser"
)

// At locates err at the line of cmd (an instructions.Command or
// *instructions.Stage) in file: "Dockerfile:7: COPY a /: err". An error
// already located is returned as it is.
func At(file string, cmd any, err error) error {
	if err == nil {
		return nil
	}
	var perr *Error
	if errors.As(err, &perr) {
		return err
	}
	line := 0
	if l, ok := cmd.(interface {
		Location() []bkparser.Range
	}); ok {
		if loc := l.Location(); len(loc) > 0 {
			line = loc[0].Start.Line
		}
	}
	if line == 0 {
		if st, ok := cmd.(*instructions.Stage); ok && len(st.Location) > 0 {
			line = st.Location[0].Start.Line
		}
	}
	prefix := ""
	if s, ok := cmd.(fmt.Stringer); ok {
		prefix = Shorten(s.String()) + ": "
	} else if st, ok := cmd.(*instructions.Stage); ok {
		prefix = Shorten(st.SourceCode) + ": "
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("%s%w", prefix, err)}
}

// Shorten keeps the first line of an instruction, at most 80 characters.
func Shorten(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " ..."
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
