package parser

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// instructionNames are the Dockerfile instructions, for "did you mean".
var instructionNames = []string{"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
	"HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// Suggest returns the candidate closest to word, compared without case,
// when it is near enough to be a typo of it: one edit (a transposition
// counts as one) for words of up to 4 letters, two up to 8, three beyond;
// "" when none is, or when word is a candidate itself.
func Suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := 1
	switch n := len([]rune(w)); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		d := editDistance(w, strings.ToLower(c))
		if d == 0 {
			return ""
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// letters, each one edit.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	rows := make([][]int, len(s)+1)
	for i := range rows {
		rows[i] = make([]int, len(t)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(s)][len(t)]
}

// unknownInstruction gives BuildKit's unknown instruction error this
// package's suggestion when it has one (a transposition is a typo too: RNU
// is RUN, where BuildKit suggests ENV); nil for any other error, or to
// keep BuildKit's message.
func unknownInstruction(err error) error {
	var ue *instructions.UnknownInstructionError
	if !errors.As(err, &ue) {
		return nil
	}
	s := Suggest(ue.Instruction, instructionNames)
	if s == "" {
		return nil
	}
	return fmt.Errorf("unknown instruction: %s (did you mean %s?)", ue.Instruction, s)
}
