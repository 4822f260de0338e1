package testutil

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install docker-registry): %v", registryBinary, err)
	}
	dir := t.TempDir()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
		err = startRegistry(t, dir, addr, attempt)
		if err == nil {
			return addr
		}
		if !errors.Is(err, errRegistryExited) {
			break
		}
	}
	t.Fatalf("start registry: %v", err)
	return ""
}

// startRegistry runs one attempt. On success the process is owned by
// t.Cleanup; on failure it is already killed and reaped.
func startRegistry(t testing.TB, dir, addr string, attempt int) error {
	name := "registry-" + strconv.Itoa(attempt)
	storage := filepath.Join(dir, name+"-storage")
	config := filepath.Join(dir, name+".yml")
	logPath := filepath.Join(dir, name+".log")
	if err := os.WriteFile(config, []byte(registryConfig(storage, addr)), 0o644); err != nil {
		return fmt.Errorf("write registry config: %w", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create registry log: %w", err)
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.Command(registryBinary, "serve", config)
	cmd.Env = registryEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = registrySysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", registryBinary, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}

	if err := waitRegistry(addr, done); err != nil {
		stop()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\nregistry log:\n%s", err, strings.TrimSpace(string(log)))
	}
	t.Cleanup(stop)
	return nil
}

// waitRegistry polls GET /v2/ until it answers 200, the process exits or the
// timeout passes.
func waitRegistry(addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), registryStartTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + addr + "/v2/"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("create request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("wait for %s: %w: %v", url, errRegistryExited, err)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: no 200 after %s", url, registryStartTimeout)
		case <-tick.C:
		}
	}
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
