package client

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseProvenance(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "<nil>" for none, "error"
	}{
		{"true", "&{min }"}, {"false", "<nil>"}, {"max", "&{max }"},
		{"mode=max,builder-id=https://ci.example/run/1", "&{max https://ci.example/run/1}"},
		{"mode=min,version=v1", "&{min }"}, {"version=v0.2", "error"}, {"mode=full", "error"}, {"foo=bar", "error"},
	} {
		p, err := ParseProvenance(tc.in)
		got := fmt.Sprint(p)
		if err != nil {
			got = "error"
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%q: %v is not a usage error", tc.in, err)
			}
		}
		if got != tc.want {
			t.Errorf("ParseProvenance(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseAnnotation(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a=b", "[{manifest a b}]"},
		{"index:a=b", "[{index a b}]"},
		{"manifest,index:org.opencontainers.image.title=x=y", "[{manifest org.opencontainers.image.title x=y} {index org.opencontainers.image.title x=y}]"},
		{"com.example:key=v", "[{manifest com.example:key v}]"},
		{"index-descriptor:a=b", "error"},
		{"novalue", "error"},
		{"index:=b", "error"},
	} {
		as, err := ParseAnnotation(tc.in)
		got := fmt.Sprint(as)
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("ParseAnnotation(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
