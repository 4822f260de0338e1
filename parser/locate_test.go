package parser

import (
	"errors"
	"strings"
	"testing"
)

func TestAtAndShorten(t *testing.T) {
	df, err := Parse(strings.NewReader("FROM scratch AS base\nCOPY a \\\n  b /dst/\n"), "ci.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("no such file")
	got := At("ci.Dockerfile", df.Stages[0].Commands[0], cause)
	var pe *Error
	if !errors.As(got, &pe) || pe.Line != 2 || !errors.Is(got, cause) {
		t.Fatalf("At(COPY) = %v, want an *Error at line 2 wrapping the cause", got)
	}
	if want := "ci.Dockerfile:2: COPY a b /dst/: no such file"; got.Error() != want {
		t.Errorf("At(COPY) = %q, want %q", got, want)
	}
	if again := At("other", df.Stages[0].Commands[0], got); again != got {
		t.Error("At re-located an already located error")
	}
	if got := At("ci.Dockerfile", &df.Stages[0], cause); !strings.HasPrefix(got.Error(), "ci.Dockerfile:1: FROM scratch AS base: ") {
		t.Errorf("At(stage) = %q", got)
	}
	if At("f", nil, nil) != nil {
		t.Error("At(nil error) is not nil")
	}
	long := strings.Repeat("x", 100)
	for in, want := range map[string]string{
		"RUN a \\\n b":    "RUN a \\ ...",
		"  RUN   a   b  ": "RUN a b",
		long:              long[:77] + "...",
	} {
		if got := Shorten(in); got != want {
			t.Errorf("Shorten(%q) = %q, want %q", in, got, want)
		}
	}
}
