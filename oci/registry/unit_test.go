package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"linux/amd64", "linux/amd64", false},
		{"linux/arm64/v8", "linux/arm64", false},
		{"linux/aarch64", "linux/arm64", false},
		{"linux/armhf", "linux/arm/v7", false},
		{"linux/arm/7", "linux/arm/v7", false},
		{"arm64", "linux/arm64", false},
		{"linux", FormatPlatform(DefaultPlatform()), false},
		{"Linux/X86_64", "linux/amd64", false},
		{"", "", true},
		{"linux/", "", true},
		{"a/b/c/d", "", true},
	} {
		p, err := ParsePlatform(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParsePlatform(%q) err = %v", tc.in, err)
			continue
		}
		if !tc.err && FormatPlatform(p) != tc.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", tc.in, FormatPlatform(p), tc.want)
		}
	}
}

func TestMatchPlatform(t *testing.T) {
	p := func(os, arch, v string) ocispec.Platform {
		return ocispec.Platform{OS: os, Architecture: arch, Variant: v}
	}
	for _, tc := range []struct {
		want, have ocispec.Platform
		ok         bool
	}{
		{p("linux", "arm64", ""), p("linux", "arm64", "v8"), true},
		{p("linux", "arm64", "v8"), p("linux", "arm64", ""), true},
		{p("linux", "arm", "v7"), p("linux", "arm", ""), true},
		{p("linux", "arm", "v6"), p("linux", "arm", "v7"), false},
		{p("linux", "arm", ""), p("linux", "arm", "v6"), true},
		{p("linux", "amd64", ""), p("linux", "arm64", ""), false},
		{p("linux", "amd64", ""), p("windows", "amd64", ""), false},
	} {
		if got := matchPlatform(tc.want, tc.have); got != tc.ok {
			t.Errorf("matchPlatform(%v, %v) = %v", tc.want, tc.have, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Mon, 01 Jan 2024 00:00:05 GMT": 5 * time.Second,
		"Mon, 01 Jan 2023 00:00:05 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestTransient(t *testing.T) {
	st := func(code int) error {
		return &statusError{code: code, status: fmt.Sprint(code, " ", http.StatusText(code)), retryAfter: time.Second}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{st(503), true},
		{st(500), true},
		{st(429), true},
		{st(501), false},
		{st(404), false},
		{st(401), false},
		{fmt.Errorf("upload: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{io.ErrUnexpectedEOF, true},
		{errors.New("digest mismatch: expected a, got b"), false},
		{errors.New("Get x: connection refused; Get y: connection refused"), true},
	} {
		if _, got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if wait, _ := transient(st(429)); wait != time.Second {
		t.Errorf("429 wait = %s, want the Retry-After", wait)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range [][3]string{
		{"NAME_UNKNOWN", "repository name not known to registry", "name unknown: repository name not known to registry"},
		{"MANIFEST_UNKNOWN", "manifest unknown", "manifest unknown"},
		{"UNAUTHORIZED", "", "unauthorized"},
		{"", "plain", "plain"},
	} {
		if got := describe(tc[0], tc[1]); got != tc[2] {
			t.Errorf("describe(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := backoff(100); got != maxBackoff {
		t.Errorf("backoff(100) = %s", got)
	}
}

// TestParallelReportsTheCause: when one blob fails, the siblings its
// cancel cuts short may fail too, with errors that are not context.Canceled
// (a retry returns its last transient error). parallel reports the first
// failure, whatever the index order.
func TestParallelReportsTheCause(t *testing.T) {
	cause := errors.New("upload blob: 503 after 5 attempts")
	err := parallel(context.Background(), 3, func(ctx context.Context, i int) error {
		if i == 2 {
			return cause
		}
		<-ctx.Done()
		return errors.New("upload blob: 503") // a consequence, at a lower index
	})
	if err != cause {
		t.Fatalf("parallel = %v, want %v", err, cause)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := parallel(ctx, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("parallel with a cancelled parent = %v", err)
	}
}
