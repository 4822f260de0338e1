package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/builderdev/builder/oci"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const configFile = "config.json"

// dockerHubKey is the auths key docker uses for Docker Hub.
const dockerHubKey = authn.DefaultAuthKey

// configKeychain reads credentials from <dir>/config.json: credential
// helpers (credHelpers, credsStore) first, then the auths entries.
type configKeychain struct{ dir string }

func (o Options) keychain() (authn.Keychain, error) {
	dir, err := o.configDir()
	if err != nil {
		return nil, err
	}
	return configKeychain{dir: dir}, nil
}

func (k configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = dockerHubKey
		}
		cfg, err := cf.GetAuthConfig(key)
		if err != nil || authEmpty(cfg) {
			// A helper that fails or knows nothing: fall back to auths.
			cfg, err = credentials.NewFileStore(cf).Get(key)
			if err != nil {
				return nil, err
			}
		}
		if !authEmpty(cfg) {
			return authn.FromConfig(authn.AuthConfig{
				Username:      cfg.Username,
				Password:      cfg.Password,
				Auth:          cfg.Auth,
				IdentityToken: cfg.IdentityToken,
				RegistryToken: cfg.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}

func authEmpty(c types.AuthConfig) bool {
	return c.Username == "" && c.Password == "" && c.Auth == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// parseRegistry accepts "host[:port]", "https://host[:port][/...]" and
// "docker.io".
func parseRegistry(s string, opts Options) (name.Registry, error) {
	host := s
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	if host == "" {
		return name.Registry{}, fmt.Errorf("invalid registry %q", s)
	}
	if opts.insecure(host) {
		return name.NewRegistry(host, name.WeakValidation, name.Insecure)
	}
	return name.NewRegistry(host, name.WeakValidation)
}

// authKey is the auths key for reg: the host, or docker's Hub URL.
func authKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return dockerHubKey
	}
	return reg.RegistryStr()
}

// Login checks user and password against the registry (GET /v2/, or the
// token service of a bearer registry), then stores them as the auths entry
// of the docker config file. Other content of the file is kept.
func Login(ctx context.Context, registry, user, password string, opts Options) error {
	reg, err := parseRegistry(registry, opts)
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	if user == "" || password == "" {
		return fmt.Errorf("login %s: user name and password are required", registry)
	}
	if err := checkLogin(ctx, reg, user, password, opts); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return fmt.Errorf("login %s: %w (wrong user name or password)", registry, err)
		}
		return fmt.Errorf("login %s: %w", registry, err)
	}
	dir, err := opts.configDir()
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	entry, err := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	key := authKey(reg)
	_, err = updateAuths(dir, func(auths map[string]json.RawMessage) bool {
		for k := range auths {
			if sameRegistry(k, key) {
				delete(auths, k)
			}
		}
		auths[key] = entry
		return true
	})
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	return nil
}

// Logout removes the auths entries of registry from the docker config
// file; it fails with oci.ErrNotFound when there are none.
func Logout(ctx context.Context, registry string, opts Options) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	reg, err := parseRegistry(registry, opts)
	if err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	dir, err := opts.configDir()
	if err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	key := authKey(reg)
	removed, err := updateAuths(dir, func(auths map[string]json.RawMessage) bool {
		n := len(auths)
		for k := range auths {
			if sameRegistry(k, key) {
				delete(auths, k)
			}
		}
		return len(auths) != n
	})
	if err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	if !removed {
		return fmt.Errorf("logout %s: not logged in: %w", registry, oci.ErrNotFound)
	}
	return nil
}

// sameRegistry compares auths keys by host ("https://h:1/v2/" == "h:1");
// every spelling of Docker Hub is the same registry.
func sameRegistry(a, b string) bool {
	ha, hb := credentials.ConvertToHostname(a), credentials.ConvertToHostname(b)
	hub := func(h string) bool { return h == "index.docker.io" || h == "docker.io" || h == "registry-1.docker.io" }
	return ha == hb || hub(ha) && hub(hb)
}

// checkLogin authenticates with user/password and GETs /v2/.
func checkLogin(ctx context.Context, reg name.Registry, user, password string, opts Options) error {
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	base := opts.baseTransport(reg.RegistryStr())
	defer base.CloseIdleConnections()
	return retry(ctx, func() error {
		rt, err := transport.NewWithContext(ctx, reg, auth, transport.NewUserAgent(base, userAgent), nil)
		if err != nil {
			return fromTransportError(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			return cleanURLError(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return readStatusError(resp)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	})
}

// updateAuths read-modify-writes the "auths" object of <dir>/config.json,
// keeping every other key. fn reports whether it changed anything; the
// file is replaced atomically (mode 0600) only then.
func updateAuths(dir string, fn func(auths map[string]json.RawMessage) bool) (bool, error) {
	path := filepath.Join(dir, configFile)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	top := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("read docker config: %w", err)
	case len(bytes.TrimSpace(data)) > 0:
		if err := json.Unmarshal(data, &top); err != nil {
			return false, fmt.Errorf("parse %s: %w", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return false, fmt.Errorf("parse %s: auths: %w", path, err)
		}
	}
	if !fn(auths) {
		return false, nil
	}
	raw, err := json.Marshal(auths)
	if err != nil {
		return false, err
	}
	top["auths"] = raw
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return false, err
	}
	if err := writeFileAtomic(path, append(out, '\n')); err != nil {
		return false, fmt.Errorf("write docker config: %w", err)
	}
	return true, nil
}

// writeFileAtomic replaces path (mode 0600) through a temp file next to
// it, creating its dir (0700) when missing.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600, atomicfile.Options{TempPattern: ".config-*.tmp"})
}
