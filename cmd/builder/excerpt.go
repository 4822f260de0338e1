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
	lines := strings.Split(strings.TrimSuffix(string(dockerfile), "\n"), "\n")
	if line < 1 || line > len(lines) {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s:%d\n--------------------\n", file, line)
	width := len(fmt.Sprint(min(line+excerptLines, len(lines))))
	for n := max(1, line-excerptLines); n <= min(len(lines), line+excerptLines); n++ {
		mark := "    "
		if n == line {
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
