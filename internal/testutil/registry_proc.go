package testutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RegistryConfig selects the features of a registry started by RunRegistry.
type RegistryConfig struct {
	TLS  bool // HTTPS with a self-signed certificate for 127.0.0.1 (CAFile)
	Auth bool // htpasswd basic auth for User/Password (needs htpasswd, from apache2-utils)
}

// Registry is a docker-registry process on 127.0.0.1 with its own storage
// in a temp dir. Kill stops it, Restart starts it again on the same address
// with the same content; t.Cleanup kills it.
type Registry struct {
	Addr     string // "127.0.0.1:port"
	CAFile   string // PEM certificate to trust (TLS only)
	User     string // basic auth user (Auth only)
	Password string // basic auth password (Auth only)

	t      testing.TB
	config string
	log    string
	mu     sync.Mutex
	stop   func()
}

// StartRegistryTLSAuth starts a registry behind TLS (self-signed
// certificate, see CAFile) with htpasswd basic auth (User, Password).
func StartRegistryTLSAuth(t testing.TB) *Registry {
	t.Helper()
	return RunRegistry(t, RegistryConfig{TLS: true, Auth: true})
}

// RunRegistry starts a registry with cfg. The test is skipped when
// docker-registry (or htpasswd, for Auth) is not installed.
func RunRegistry(t testing.TB, cfg RegistryConfig) *Registry {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("skipping: %s not found (apt-get install docker-registry): %v", registryBinary, err)
	}
	dir := t.TempDir()
	r := &Registry{t: t, config: filepath.Join(dir, "config.yml"), log: filepath.Join(dir, "registry.log")}
	var tlsConf, authConf string // appended to the http: section / top level
	if cfg.TLS {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := writeSelfSigned(cert, key); err != nil {
			t.Fatalf("make registry certificate: %v", err)
		}
		r.CAFile = cert
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %q\n    key: %q\n", cert, key)
	}
	if cfg.Auth {
		htpasswd, err := exec.LookPath("htpasswd")
		if err != nil {
			t.Skipf("skipping: htpasswd not found (apt-get install apache2-utils): %v", err)
		}
		r.User, r.Password = "builder", "s3cret-"+strconv.Itoa(os.Getpid())
		out, err := exec.Command(htpasswd, "-Bbn", r.User, r.Password).Output()
		if err != nil {
			t.Fatalf("run htpasswd: %v", err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, out, 0o600); err != nil {
			t.Fatal(err)
		}
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: builder-test\n    path: %q\n", pw)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		r.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		conf := registryConfig(filepath.Join(dir, "storage"), r.Addr) + tlsConf + authConf
		if err = os.WriteFile(r.config, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err = r.start(cfg.TLS); err == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("start registry: %v", err)
	return nil
}

// URL is the base URL of the registry ("https://127.0.0.1:port").
func (r *Registry) URL() string {
	if r.CAFile != "" {
		return "https://" + r.Addr
	}
	return "http://" + r.Addr
}

// Kill stops the registry with SIGKILL and waits for it. Idempotent.
func (r *Registry) Kill() {
	r.mu.Lock()
	stop := r.stop
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Restart starts a killed registry again, same address and storage.
func (r *Registry) Restart() {
	r.t.Helper()
	r.Kill()
	if err := r.start(r.CAFile != ""); err != nil {
		r.t.Fatalf("restart registry: %v", err)
	}
}

func (r *Registry) start(tlsOn bool) error {
	logFile, err := os.OpenFile(r.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create registry log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(registryBinary, "serve", r.config)
	cmd.Env = registryEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
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
	if err := waitRegistryUp(r.Addr, tlsOn, done); err != nil {
		stop()
		log, _ := os.ReadFile(r.log)
		return fmt.Errorf("%w\nregistry log:\n%s", err, strings.TrimSpace(string(log)))
	}
	r.mu.Lock()
	r.stop = stop
	r.mu.Unlock()
	return nil
}

// waitRegistryUp polls GET /v2/ until it answers 200 or 401.
func waitRegistryUp(addr string, tlsOn bool, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), registryStartTimeout)
	defer cancel()
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	client := &http.Client{Transport: tr, Timeout: time.Second}
	defer tr.CloseIdleConnections()
	url := "http://" + addr + "/v2/"
	if tlsOn {
		url = "https://" + addr + "/v2/"
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("wait for %s: %w: %v", url, errRegistryExited, err)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: no answer after %s", url, registryStartTimeout)
		case <-tick.C:
		}
	}
}

// writeSelfSigned writes a P-256 self-signed CA certificate for 127.0.0.1
// and localhost, valid for a day.
func writeSelfSigned(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "builder test registry"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
