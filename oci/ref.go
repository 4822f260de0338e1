package oci

import (
	"errors"
	"fmt"
	"strings"

	"github.com/builderdev/builder/internal/refgrammar"
)

// A small validator for the docker reference grammar
// (github.com/distribution/reference), written out as code:
//
//	reference   := name [ ":" tag ] [ "@" digest ]
//	name        := [domain "/"] path-component ["/" path-component]*
//	domain      := host [":" port]
//	host        := domain-component ["." domain-component]* | "[" ipv6 "]"
//	path-comp   := alnum [separator alnum]*     (lowercase only)
//	separator   := "." | "_" | "__" | "-"+
//	tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//
// The first component is a domain when it holds a "." or ":", is "localhost"
// or has uppercase letters. Names are stored in their familiar form: the
// "docker.io/" and "docker.io/library/" prefixes are dropped.

const maxNameLen = 255

// NormalizeRef returns the canonical form of an image reference as stored in
// index.json: "name:tag" (":latest" added when no tag or digest is given).
func NormalizeRef(ref string) (string, error) {
	r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// reference is a parsed, familiarized image reference.
type reference struct {
	domain string // "" for docker.io
	path   string // "app", "library/foo/bar", "a/b"
	tag    string
	digest string // "sha256:<hex>" or ""
}

// repo is the familiar repository name: "app", "localhost:5000/a/b".
func (r reference) repo() string {
	if r.domain == "" {
		return r.path
	}
	return r.domain + "/" + r.path
}

func (r reference) String() string {
	s := r.repo()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// qualified is the fully qualified name used by containerd and docker 25+
// ("docker.io/library/app:v1").
func (r reference) qualified() string {
	q := r
	if q.domain == "" {
		q.domain = "docker.io"
		if !strings.Contains(q.path, "/") {
			q.path = "library/" + q.path
		}
	}
	return q.String()
}

func parseRef(ref string) (reference, error) {
	r, err := splitRef(ref)
	if err != nil {
		return reference{}, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	return r, nil
}

func splitRef(ref string) (reference, error) {
	var r reference
	if ref == "" {
		return r, errors.New("empty reference")
	}
	name, dig, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if _, err := parseDigest(dig); err != nil {
			return r, err
		}
		r.digest = dig
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, r.tag = name[:i], name[i+1:]
		if !refgrammar.ValidTag(r.tag) {
			return r, fmt.Errorf("invalid tag %q", r.tag)
		}
	}
	if name == "" {
		return r, errors.New("empty repository name")
	}
	if len(name) > maxNameLen {
		return r, fmt.Errorf("repository name longer than %d characters", maxNameLen)
	}
	r.domain, r.path = splitDomain(name)
	if r.domain != "" && !refgrammar.ValidDomain(r.domain) {
		return r, fmt.Errorf("invalid domain %q", r.domain)
	}
	for _, c := range strings.Split(r.path, "/") {
		if !refgrammar.ValidPathComponent(strings.ToLower(c)) {
			return r, fmt.Errorf("invalid repository name %q", r.path)
		}
	}
	if r.path != strings.ToLower(r.path) {
		return r, errors.New("repository name must be lowercase")
	}
	if r.domain == "docker.io" || r.domain == "index.docker.io" {
		r.domain = ""
		if rest, ok := strings.CutPrefix(r.path, "library/"); ok && !strings.Contains(rest, "/") {
			r.path = rest
		}
	}
	if r.domain == "" && len(r.path) == 64 && isLowerHex(r.path) {
		return r, errors.New("repository name cannot be a 64-character hexadecimal string")
	}
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r, nil
}

func splitDomain(name string) (domain, path string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok {
		return "", name
	}
	if strings.ContainsAny(first, ".:") || first == "localhost" || first != strings.ToLower(first) {
		return first, rest
	}
	return "", name
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
