// Package parser is the Dockerfile language: it turns Dockerfile bytes into
// located, typed stages, a thin wrapper over BuildKit's parser,
// instructions and shell packages (exact Docker semantics) that keeps
// warnings and puts the Dockerfile line on every error (At). It also holds
// the language's values the engine needs: variables in scope (Vars, the
// automatic platform and proxy ARGs), word expansion within bounds
// (Expander: 1 MiB a word, 8 MiB an instruction, 16 MiB in scope), ONBUILD
// triggers, EXPOSE and STOPSIGNAL values, and the kinds of ADD sources.
package parser

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	bkparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand // ARGs before the first FROM
	Escape   rune

	data []byte           // the Dockerfile, for its `# check=` directive
	res  *bkparser.Result // the syntax tree and the parser's warnings (Check)
}

// Error is an error located at a Dockerfile line.
type Error struct {
	File string // e.g. "Dockerfile"
	Line int    // 1-based; 0 when unknown
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Position is where the error is: the file and its 1-based line (0:
// unknown). Callers outside the engine find it with errors.As and an
// interface, to show the Dockerfile around it.
func (e *Error) Position() (file string, line int) { return e.File, e.Line }

// ErrEmpty is returned for a Dockerfile without instructions.
var ErrEmpty = errors.New("file with no instructions")

// Parse parses a Dockerfile; file names it in errors ("Dockerfile").
func Parse(r io.Reader, file string) (*Dockerfile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	res, err := bkparser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locate(file, err)
	}
	df := &Dockerfile{Escape: res.EscapeToken, data: data, res: res}
	if len(res.AST.Children) == 0 {
		return nil, &Error{File: file, Err: ErrEmpty}
	}
	// The build checks BuildKit runs while it parses run in Check. A nil
	// linter would panic on a `# check=` comment before an instruction.
	stages, metaArgs, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		return nil, locate(file, err)
	}
	if len(stages) == 0 {
		return nil, &Error{File: file, Line: firstLine(res.AST.Children[0].Location()), Err: errors.New("no FROM instruction: nothing to build")}
	}
	df.Stages = stages
	df.MetaArgs = metaArgs
	return df, nil
}

// Line returns the first line of a command, for error messages.
func Line(cmd interface{ Location() []bkparser.Range }) int {
	return firstLine(cmd.Location())
}

// Lex returns a word expander with the Dockerfile's escape token.
func (d *Dockerfile) Lex() *shell.Lex {
	esc := d.Escape
	if esc == 0 {
		esc = '\\'
	}
	return shell.NewLex(esc)
}

func firstLine(loc []bkparser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// locate turns a BuildKit error into an *Error with its line and a short message.
func locate(file string, err error) error {
	line := 0
	var le *bkparser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 {
		line = firstLine(le.Locations[0])
	}
	if u := unknownInstruction(err); u != nil {
		return &Error{File: file, Line: line, Err: u}
	}
	msg := err.Error()
	// BuildKit prefixes some messages with "dockerfile parse error on line N: ".
	if i := strings.Index(msg, "dockerfile parse error on line "); i >= 0 {
		if j := strings.Index(msg[i:], ": "); j >= 0 {
			msg = msg[:i] + msg[i+j+2:]
		}
	}
	return &Error{File: file, Line: line, Err: errors.New(msg)}
}
