package oci

import (
	"strings"
	"testing"
)

func TestNormalizeRef(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in, want string // want "" = error
	}{
		{"app", "app:latest"},
		{"app:v1", "app:v1"},
		{"app:V1.0_rc-1", "app:V1.0_rc-1"},
		{"a/b/c", "a/b/c:latest"},
		{"my-app__x.y", "my-app__x.y:latest"},
		{"a---b", "a---b:latest"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest"},
		{"localhost/app:v2", "localhost/app:v2"},
		{"registry.example.com/team/app:1", "registry.example.com/team/app:1"},
		{"Registry.Example.com/app", "Registry.Example.com/app:latest"},
		{"[::1]:5000/app", "[::1]:5000/app:latest"},
		{"docker.io/library/alpine:3", "alpine:3"},
		{"docker.io/alpine", "alpine:latest"},
		{"index.docker.io/library/alpine", "alpine:latest"},
		{"docker.io/library/foo/bar", "library/foo/bar:latest"},
		{"docker.io/user/app", "user/app:latest"},
		{"a@sha256:" + hex, "a@sha256:" + hex},
		{"a:v1@sha256:" + hex, "a:v1@sha256:" + hex},
		{"", ""},
		{"App", ""},
		{"app/Sub", ""},
		{"app:", ""},
		{":v1", ""},
		{"app:-v1", ""},
		{"app:" + strings.Repeat("x", 129), ""},
		{"-app", ""},
		{"app-", ""},
		{"a..b", ""},
		{"a___b", ""},
		{"a//b", ""},
		{"/app", ""},
		{"app/", ""},
		{"a b", ""},
		{"a@sha256:abc", ""},
		{"a@md5:" + hex, ""},
		{"a@sha256:" + strings.ToUpper(hex), ""},
		{hex, ""},
		{"host:port/app", ""},
		{"-bad.com/app", ""},
		{strings.Repeat("a", 256), ""},
	}
	for _, tt := range tests {
		got, err := NormalizeRef(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeRef(%q) = %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestQualified(t *testing.T) {
	for in, want := range map[string]string{
		"app:v1":              "docker.io/library/app:v1",
		"user/app:v1":         "docker.io/user/app:v1",
		"localhost:5000/a:v1": "localhost:5000/a:v1",
		"quay.io/org/app:2":   "quay.io/org/app:2",
	} {
		r, err := parseRef(in)
		if err != nil || r.qualified() != want {
			t.Errorf("qualified(%q) = %q, %v; want %q", in, r.qualified(), err, want)
		}
	}
}

func TestLoadName(t *testing.T) {
	const ref, ctr = "org.opencontainers.image.ref.name", "io.containerd.image.name"
	tests := []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{ref: "app:v1"}, "app:v1"},
		{map[string]string{ref: "docker.io/library/app:v1"}, "app:v1"},
		{map[string]string{ref: "v1"}, "base:v1"},
		{map[string]string{ref: "v1", ctr: "docker.io/library/web:v1"}, "web:v1"},
		{map[string]string{ctr: "quay.io/x/y:z"}, "quay.io/x/y:z"},
		{map[string]string{}, ""},
	}
	for _, tt := range tests {
		got, err := loadName(tt.ann, "Base")
		if err != nil || got != tt.want {
			t.Errorf("loadName(%v) = %q, %v; want %q", tt.ann, got, err, tt.want)
		}
	}
	if _, err := loadName(map[string]string{ref: "Bad/Name:x"}, "base"); err == nil {
		t.Error("invalid ref.name accepted")
	}
}
