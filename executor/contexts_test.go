package executor

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseContexts(t *testing.T) {
	dir := t.TempDir()
	dg := "sha256:" + digest.FromString("x").Encoded()
	for _, c := range []struct {
		value, kind, ref, tag string
		dgst                  digest.Digest
		remote, gitRef        string
		err                   bool
	}{
		{value: "docker-image://alpine:3.20", kind: "image", ref: "alpine:3.20"},
		{value: "oci-layout:///srv/lay", kind: "oci-layout", ref: "/srv/lay"},
		{value: "oci-layout:///srv/lay:v1", kind: "oci-layout", ref: "/srv/lay", tag: "v1"},
		{value: "oci-layout://./a:b/lay@" + dg, kind: "oci-layout", ref: "./a:b/lay", dgst: digest.Digest(dg)},
		{value: "oci-layout:///l@sha256:nothex", err: true},
		{value: "https://h/r.git#main:sub", kind: "git", remote: "https://h/r.git", gitRef: "main"},
		{value: "git@h:o/r.git", kind: "git", remote: "git@h:o/r.git"},
		{value: "https://h/r.git?bogus=1", err: true},
		{value: "https://h/ctx.tar.gz", kind: "url", ref: "https://h/ctx.tar.gz"},
		{value: dir, kind: "dir", ref: dir},
		{value: dir + "/missing", err: true},
		{value: "target:base", err: true},
		{value: "s3://bucket/x", err: true},
	} {
		got, err := parseContexts(map[string]string{"n": c.value})
		if c.err {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%s: err %v, want a usage error", c.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.value, err)
			continue
		}
		nc := got["n"]
		if nc.kind != c.kind || nc.ref != c.ref || nc.tag != c.tag || nc.dgst != c.dgst ||
			nc.gitRef.Remote != c.remote || nc.gitRef.Ref != c.gitRef {
			t.Errorf("%s: got kind %q ref %q tag %q dgst %q git %+v", c.value, nc.kind, nc.ref, nc.tag, nc.dgst, nc.gitRef)
		}
	}
	if _, err := parseContexts(map[string]string{"": dir}); !errors.Is(err, ErrUsage) {
		t.Errorf("empty name: %v", err)
	}
}
