package git

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want Ref
		err  bool
	}{
		{in: "https://example.com/foo", ok: false},
		{in: "https://example.com/foo.git/", ok: false},
		{in: "./foo.git", ok: false},
		{in: "foo:bar", ok: false},
		{in: ".", ok: false},
		{in: "/abs/dir@2:x", ok: false},
		{in: "://h/r.git", ok: false},
		{in: "a-b://h/r.git", ok: false},
		{in: "HTTPS://h/r.git", ok: true, want: Ref{Remote: "https://h/r.git", Submodules: true}},
		{in: "ftp://example.com/foo.git", ok: false},
		{in: "https://example.com/foo.git", ok: true, want: Ref{Remote: "https://example.com/foo.git", Submodules: true}},
		{in: "https://example.com/foo.git#v1.2:sub/../dir", ok: true, want: Ref{Remote: "https://example.com/foo.git", Ref: "v1.2", Subdir: "dir", Submodules: true}},
		{in: "git://host/foo#main", ok: true, want: Ref{Remote: "git://host/foo", Ref: "main", Submodules: true}},
		{in: "ssh://git@host/foo.git#release/1.2", ok: true, want: Ref{Remote: "ssh://git@host/foo.git", Ref: "release/1.2", Submodules: true}},
		{in: "git@github.com:o/r.git#v1:docs", ok: true, want: Ref{Remote: "git@github.com:o/r.git", Ref: "v1", Subdir: "docs", Submodules: true}},
		{in: "https://h/r.git?tag=v1&keep-git-dir=true&submodules=false&subdir=x", ok: true,
			want: Ref{Remote: "https://h/r.git", Ref: "refs/tags/v1", Subdir: "x", KeepGitDir: true}},
		{in: "https://h/r.git?branch=dev&checksum=abc123", ok: true, want: Ref{Remote: "https://h/r.git", Ref: "refs/heads/dev", Checksum: "abc123", Submodules: true}},
		{in: "https://h/r.git?tag=a&branch=b", ok: true, err: true},
		{in: "https://h/r.git#main?ref=dev", ok: true, want: Ref{Remote: "https://h/r.git", Ref: "main?ref=dev", Submodules: true}},
		{in: "https://h/r.git?ref=dev#main", ok: true, err: true},
		{in: "https://h/r.git?checksum=xyz", ok: true, err: true},
		{in: "https://h/r.git?bogus=1", ok: true, err: true},
	} {
		got, ok, err := Parse(c.in)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("Parse(%q): ok %v err %v, want ok %v err %v", c.in, ok, err, c.ok, c.err)
			continue
		}
		if err == nil && ok && got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestPick(t *testing.T) {
	const out = "1111111111111111111111111111111111111111\trefs/heads/v1\n" +
		"2222222222222222222222222222222222222222\trefs/tags/v1\n" +
		"3333333333333333333333333333333333333333\trefs/tags/v1^{}\n" +
		"4444444444444444444444444444444444444444\trefs/tags/v2\n" +
		"5555555555555555555555555555555555555555\trefs/tags/v2^{}\n" +
		"6666666666666666666666666666666666666666\tHEAD\n"
	for _, c := range []struct{ ref, commit, tagged string }{
		{"v1", "1111111111111111111111111111111111111111", ""}, // a branch wins, as in git checkout
		{"refs/tags/v1", "3333333333333333333333333333333333333333", "2222222222222222222222222222222222222222"},
		{"v2", "5555555555555555555555555555555555555555", "4444444444444444444444444444444444444444"},
		{"", "6666666666666666666666666666666666666666", ""},
		{"nope", "", ""},
	} {
		commit, tagged := pick(out, c.ref)
		if commit != c.commit || tagged != c.tagged {
			t.Errorf("pick(%q) = %s, %s; want %s, %s", c.ref, commit, tagged, c.commit, c.tagged)
		}
	}
}

func TestCheck(t *testing.T) {
	r := Ref{Remote: "https://h/r.git", Ref: "main", Checksum: "ABC"}
	if err := r.check("abcdef0000000000000000000000000000000000", ""); err != nil {
		t.Errorf("prefix, any case: %v", err)
	}
	if err := r.check("0000000000000000000000000000000000000000", "abc0"); err != nil {
		t.Errorf("the annotated tag: %v", err)
	}
	if err := r.check("0000000000000000000000000000000000000000", ""); !errors.Is(err, ErrChecksum) {
		t.Errorf("mismatch: %v", err)
	}
}

func TestAuthHeader(t *testing.T) {
	r := Ref{Remote: "https://h.example/r.git"}
	a := Auth{Secrets: map[string][]byte{"GIT_AUTH_TOKEN": []byte("tok\n"), "GIT_AUTH_HEADER.h.example": []byte("bearer x")}}
	if got := a.header(r); got != "bearer x" {
		t.Errorf("host header first: %q", got)
	}
	delete(a.Secrets, "GIT_AUTH_HEADER.h.example")
	if got := a.header(r); got != "basic eC1hY2Nlc3MtdG9rZW46dG9r" { // x-access-token:tok
		t.Errorf("token: %q", got)
	}
	if got := a.header(Ref{Remote: "git@h.example:r.git"}); got != "" {
		t.Errorf("ssh remote got a header: %q", got)
	}
}
