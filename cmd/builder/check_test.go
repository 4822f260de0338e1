package main

import (
	"bytes"
	"testing"

	"github.com/builderdev/builder/client"
)

// The end-of-build list of the checks' warnings, short and with --debug.
func TestCheckSummary(t *testing.T) {
	df := []byte("FROM busybox\nRUN true\nCMD echo a \\\n  b\n")
	ws := []client.CheckWarning{{Line: 3, EndLine: 4, Rule: "JSONArgsRecommended", Message: "JSON arguments recommended for CMD",
		Description: "JSON arguments recommended for ENTRYPOINT/CMD", URL: "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"}}
	for _, tc := range []struct {
		debug bool
		ws    []client.CheckWarning
		want  string
	}{
		{false, nil, ""},
		{false, ws, "\n 1 warning found (use builder --debug to expand):\n - JSONArgsRecommended: JSON arguments recommended for CMD (line 3)\n"},
		{false, append(ws, ws...), "\n 2 warnings found (use builder --debug to expand):\n" +
			" - JSONArgsRecommended: JSON arguments recommended for CMD (line 3)\n - JSONArgsRecommended: JSON arguments recommended for CMD (line 3)\n"},
		{true, ws, "\n 1 warning found:\n - JSONArgsRecommended: JSON arguments recommended for CMD (line 3)\n" +
			"JSON arguments recommended for ENTRYPOINT/CMD\nMore info: https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n" +
			"Dockerfile:3\n--------------------\n 1 |     FROM busybox\n 2 |     RUN true\n 3 | >>> CMD echo a \\\n 4 | >>>   b\n--------------------\n\n"},
	} {
		var b bytes.Buffer
		writeCheckSummary(&b, tc.ws, tc.debug, "Dockerfile", df)
		if b.String() != tc.want {
			t.Errorf("debug=%v %d warnings:\n%q\nwant\n%q", tc.debug, len(tc.ws), b.String(), tc.want)
		}
	}
}
