package testutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// registryBinary is Debian's docker-registry (distribution v2).
const registryBinary = "/usr/bin/docker-registry"

// registryStartTimeout bounds the wait for GET /v2/ to answer 200.
const registryStartTimeout = 10 * time.Second

// errRegistryExited means the registry died before answering, usually because
// another process took its port between FreePort and listen.
var errRegistryExited = errors.New("registry exited")

// StartRegistry starts a throwaway docker-registry on 127.0.0.1 with storage
// in t.TempDir() and no auth, waits until GET /v2/ answers 200, and returns
// its "127.0.0.1:port" address. t.Cleanup kills and reaps it. The test is
// skipped when docker-registry is not installed.
func StartRegistry(t testing.TB) string {
	t.Helper()
	return RunRegistry(t, RegistryConfig{}).Addr
}

func registryConfig(storage, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: %q
  secret: builder-test-secret
`, storage, addr)
}

// registryEnv is the environment without REGISTRY_* variables, which would
// override the config file.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}
