package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"
)

const (
	maxAttempts   = 5
	firstBackoff  = 250 * time.Millisecond
	maxBackoff    = 4 * time.Second
	maxRetryAfter = 60 * time.Second
)

// attemptsError is the last error of an operation that was retried.
type attemptsError struct {
	err error
	n   int
}

func (e *attemptsError) Error() string { return fmt.Sprintf("%v after %d attempts", e.err, e.n) }
func (e *attemptsError) Unwrap() error { return e.err }

// retry runs fn until it succeeds, fails for good, ctx is done or
// maxAttempts is reached. Between attempts it waits the server's
// Retry-After (capped) or an exponential backoff.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		wait, ok := transient(err)
		if !ok {
			return err
		}
		if attempt == maxAttempts {
			return &attemptsError{err: err, n: attempt}
		}
		if wait <= 0 {
			wait = backoff(attempt)
		}
		t := time.NewTimer(min(wait, maxRetryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retrying after: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff after the given (1-based) failed attempt: 250ms, 500ms, 1s, 2s, 4s...
func backoff(attempt int) time.Duration {
	d := firstBackoff << (attempt - 1)
	if d <= 0 || d > maxBackoff {
		return maxBackoff
	}
	return d
}

// transient reports whether err is worth another try, and how long the
// server asked us to wait (0: use the backoff).
func transient(err error) (time.Duration, bool) {
	var se *statusError
	if errors.As(err, &se) {
		switch se.code {
		case http.StatusTooManyRequests, http.StatusRequestTimeout:
			return se.retryAfter, true
		case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
			return 0, false
		}
		return se.retryAfter, se.code >= 500 && se.code <= 599
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0, false
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), isTimeout(err):
		return 0, true
	}
	// Errors that lost their chain (ggcr joins ping errors as text).
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "unexpected EOF", "server closed idle connection"} {
		if strings.Contains(msg, s) {
			return 0, true
		}
	}
	return 0, false
}
