package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// located is an error that knows its Dockerfile line (parser.Error).
type located interface {
	Position() (file string, line int)
}

// excerptLines is how many lines around the failing one an excerpt shows.
const excerptLines = 2

// writeExcerpt shows the Dockerfile around the line err names, the line
// marked, as BuildKit does; nothing when err names no line of dockerfile.
func writeExcerpt(w io.Writer, err error, dockerfile []byte) {
	var loc located
	if !errors.As(err, &loc) {
		return
	}
	file, line := loc.Position()
	writeExcerptLines(w, file, line, line, dockerfile)
}

// writeExcerptLines shows the Dockerfile around lines start..end (one
// instruction), those marked; nothing when start is not a line of it.
func writeExcerptLines(w io.Writer, file string, start, end int, dockerfile []byte) {
	lines := strings.Split(strings.TrimSuffix(string(dockerfile), "\n"), "\n")
	if start < 1 || start > len(lines) {
		return
	}
	end = min(max(end, start), len(lines))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s:%d\n--------------------\n", file, start)
	width := len(fmt.Sprint(min(end+excerptLines, len(lines))))
	for n := max(1, start-excerptLines); n <= min(len(lines), end+excerptLines); n++ {
		mark := "    "
		if n >= start && n <= end {
			mark = ">>> "
		}
		fmt.Fprintf(&b, " %*d | %s%s\n", width, n, mark, strings.TrimRight(lines[n-1], "\r"))
	}
	b.WriteString("--------------------\n")
	_, _ = w.Write(b.Bytes())
}

// excerptError is a failed build: main prints the error, then the
// Dockerfile around the line it names.
type excerptError struct {
	err        error
	dockerfile []byte
}

func (e excerptError) Error() string { return e.err.Error() }
func (e excerptError) Unwrap() error { return e.err }
