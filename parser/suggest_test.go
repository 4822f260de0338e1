package parser

import "testing"

func TestSuggest(t *testing.T) {
	stages := []string{"build", "runtime", "test-deps"}
	for _, c := range []struct {
		word  string
		cands []string
		want  string
	}{
		{"RUNN", instructionNames, "RUN"},
		{"COPPY", instructionNames, "COPY"},
		{"RNU", instructionNames, "RUN"},   // a transposition is one edit
		{"form", instructionNames, "FROM"}, // any case
		{"ENTRYPIONT", instructionNames, "ENTRYPOINT"},
		{"FOO", instructionNames, ""}, // two edits from FROM: too far for 3 letters
		{"BOGUS", instructionNames, ""},
		{"RUN", instructionNames, ""}, // not a typo
		{"buidl", stages, "build"},
		{"nme", []string{"name", "base"}, "name"},
		{"runtme", stages, "runtime"},
		{"test-dep", stages, "test-deps"},
		{"alpine", stages, ""},
		{"", stages, ""},
	} {
		if got := Suggest(c.word, c.cands); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}
