package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestStringsFlag: each use appends one value as pflag's stringArray does
// (a comma is part of the value), and help shows the type and no default.
func TestStringsFlag(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"-t", "a"}, []string{"a"}},
		{[]string{"-t", "a,b", "--tag=c", "--tag="}, []string{"a,b", "c", ""}},
	}
	for _, tt := range tests {
		var got []string
		fl := pflag.NewFlagSet("x", pflag.ContinueOnError)
		stringsVarP(fl, &got, "tag", "t", "a tag")
		if err := fl.Parse(tt.args); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
		ours := fl.FlagUsages()
		var ref []string
		theirs := pflag.NewFlagSet("y", pflag.ContinueOnError)
		theirs.StringArrayVarP(&ref, "tag", "t", nil, "a tag")
		if want := theirs.FlagUsages(); ours != want {
			t.Errorf("help %q, pflag's stringArray gives %q", ours, want)
		}
		if strings.Contains(ours, "default") {
			t.Errorf("help shows a default: %q", ours)
		}
	}
}
