package parser

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Triggers parses a base image's ONBUILD triggers into the commands a
// stage built on it runs first. A trigger that is ONBUILD or MAINTAINER
// is refused, as Docker refuses it.
func Triggers(onbuild []string) ([]instructions.Command, error) {
	var cmds []instructions.Command
	for _, t := range onbuild {
		df, err := Parse(strings.NewReader("FROM scratch\n"+t+"\n"), "ONBUILD")
		if err != nil {
			return nil, fmt.Errorf("parse ONBUILD trigger %q: %w", t, err)
		}
		for _, c := range df.Stages[0].Commands {
			switch c.(type) {
			case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
				return nil, fmt.Errorf("ONBUILD trigger %q is not allowed", t)
			}
			cmds = append(cmds, c)
		}
	}
	return cmds, nil
}
