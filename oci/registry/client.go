package registry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/oci"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const (
	maxManifestSize   = 16 << 20 // manifests and indexes
	maxErrorBody      = 64 << 10
	responseTimeout   = 3 * time.Minute // headers of one response
	userAgent         = "builder"
	headerContentType = "Content-Type"
)

// client talks to one repository of one registry over an authenticated
// transport.
type client struct {
	repo   name.Repository
	hc     *http.Client
	base   *http.Transport
	authed bool // credentials were found for the registry
}

// parseRef parses ref with ggcr's (docker's) defaults: docker.io, :latest,
// and plain HTTP allowed for insecure registries.
func parseRef(ref string, opts Options) (name.Reference, error) {
	if _, err := oci.NormalizeRef(ref); err != nil {
		return nil, err
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	if opts.insecure(r.Context().RegistryStr()) {
		return name.ParseReference(ref, name.WeakValidation, name.Insecure)
	}
	return r, nil
}

// baseTransport is the TLS/HTTP transport under the auth layer.
func (o Options) baseTransport(host string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = responseTimeout
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.insecure(host) {
		t.TLSClientConfig.InsecureSkipVerify = true // the user asked for it for this registry
	}
	return t
}

// newClient pings the registry and sets up auth for scopes.
func newClient(ctx context.Context, repo name.Repository, opts Options, scopes []string) (*client, error) {
	auth, authed, err := opts.authenticator(ctx, repo)
	if err != nil {
		return nil, err
	}
	base := opts.baseTransport(repo.RegistryStr())
	var rt http.RoundTripper
	err = retry(ctx, func() error {
		var err error
		rt, err = transport.NewWithContext(ctx, repo.Registry, auth, transport.NewUserAgent(base, userAgent), scopes)
		if err != nil {
			return authError(fromTransportError(err), repo.RegistryStr(), authed)
		}
		return nil
	})
	if err != nil {
		base.CloseIdleConnections()
		return nil, fmt.Errorf("connect to registry %s: %w", repo.RegistryStr(), err)
	}
	return &client{repo: repo, hc: &http.Client{Transport: rt}, base: base, authed: authed}, nil
}

func (c *client) close() { c.base.CloseIdleConnections() }

// url of a path under /v2/<repo>/. The scheme is fixed up by the transport
// when the ping found a plain HTTP registry.
func (c *client) url(path string) string {
	return "https://" + c.repo.RegistryStr() + "/v2/" + c.repo.RepositoryStr() + "/" + path
}

// send makes one request. A status not in ok is returned as a *statusError
// (the body is closed); otherwise the caller closes the body.
func (c *client) send(ctx context.Context, method, u string, hdr http.Header, body io.Reader, size int64, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, cleanURLError(err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, authError(readStatusError(resp), c.repo.RegistryStr(), c.authed)
}

// cleanURLError drops the method and URL of a transport error, keeping the
// cause ("dial tcp ...: connection refused"); errors stay matchable.
func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError is an unexpected HTTP status, with the registry's error
// codes ("MANIFEST_UNKNOWN: manifest unknown") when it sent any.
type statusError struct {
	code       int
	status     string // "404 Not Found"
	details    []string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	if len(e.details) == 0 {
		return e.status
	}
	return strings.Join(e.details, "; ") + " (HTTP " + strconv.Itoa(e.code) + ")"
}

// Is maps 401/403 to ErrUnauthorized and 404 to oci.ErrNotFound.
func (e *statusError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.code == http.StatusUnauthorized || e.code == http.StatusForbidden
	case oci.ErrNotFound:
		return e.code == http.StatusNotFound
	}
	return false
}

type registryErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func readStatusError(resp *http.Response) *statusError {
	e := &statusError{code: resp.StatusCode, status: resp.Status}
	if e.status == "" {
		e.status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	if !strings.Contains(e.status, " ") {
		e.status += " " + http.StatusText(resp.StatusCode)
	}
	e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var re registryErrors
	if json.Unmarshal(data, &re) == nil {
		for _, d := range re.Errors {
			e.details = append(e.details, describe(d.Code, d.Message))
		}
	}
	return e
}

// describe renders a registry error code and message: "NAME_UNKNOWN",
// "repository name not known to registry" -> "name unknown: repository
// name not known to registry".
func describe(code, msg string) string {
	c := strings.ToLower(strings.ReplaceAll(code, "_", " "))
	switch {
	case c == "":
		return msg
	case msg == "" || strings.EqualFold(msg, c):
		return c
	}
	return c + ": " + msg
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// fromTransportError turns ggcr's *transport.Error (from the ping or a
// token exchange) into a *statusError.
func fromTransportError(err error) error {
	te, ok := err.(*transport.Error)
	if !ok {
		return cleanURLError(err)
	}
	e := &statusError{code: te.StatusCode, status: strconv.Itoa(te.StatusCode) + " " + http.StatusText(te.StatusCode)}
	for _, d := range te.Errors {
		e.details = append(e.details, describe(string(d.Code), d.Message))
	}
	return e
}

// authError adds who was (not) authenticated to a 401/403.
func authError(err error, host string, authed bool) error {
	if !errors.Is(err, ErrUnauthorized) {
		return err
	}
	if authed {
		return fmt.Errorf("%w (credentials for %s were rejected)", err, host)
	}
	return fmt.Errorf("%w (no credentials for %s: log in first)", err, host)
}

// authenticator resolves the credentials of the docker config for repo.
func (o Options) authenticator(ctx context.Context, repo name.Repository) (authn.Authenticator, bool, error) {
	kc, err := o.keychain()
	if err != nil {
		return nil, false, err
	}
	auth, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return nil, false, fmt.Errorf("read credentials for %s: %w", repo.RegistryStr(), err)
	}
	return auth, auth != authn.Anonymous, nil
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
