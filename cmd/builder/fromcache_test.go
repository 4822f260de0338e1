package main

import (
	"strings"
	"testing"
)

func TestFromCacheCandidate(t *testing.T) {
	for _, tc := range []struct {
		args string
		want bool
	}{
		{"build .", true},
		{"--root /x build -t a:1 .", true},
		{"--debug build --push -t r/a:1 .", true},
		{"build -f Dockerfile.ci .", true},
		{"images", false},
		{"run img", false},
		{"build -o type=oci,dest=x.tar .", false},
		{"build --output=type=local,dest=d .", false},
		{"build -otype=tar,dest=x .", false},
		{"build --check-reproducible .", false},
		{"build -f - .", false},
		{"build --file=- .", false},
		{"build -", false},
		{"--root build images", false}, // --root takes "build" as its value
	} {
		if got := fromCacheCandidate(strings.Fields(tc.args)); got != tc.want {
			t.Errorf("fromCacheCandidate(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
