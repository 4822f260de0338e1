package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/builderdev/builder/oci"
)

func readConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoginTLSAuth(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistryTLSAuth(t)
	dir := t.TempDir()
	// Other content of config.json must survive login and logout.
	initial := `{"auths":{"other.example":{"auth":"b3RoZXI6cHc="}},"experimental":"enabled","proxies":{"default":{"noProxy":"x"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfigDir: dir, Insecure: []string{reg.Addr}}
	src := openStore(t)
	img := makeImage(t, src, "app:v1", "amd64", 7, 4000)
	ref := reg.Addr + "/app:v1"

	t.Run("verify TLS", func(t *testing.T) {
		err := Login(ctx, reg.Addr, reg.User, reg.Password, Options{ConfigDir: dir})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("login to an untrusted certificate: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		err := Push(ctx, src, img, ref, opts)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "(no credentials for "+reg.Addr) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		err := Login(ctx, reg.Addr, reg.User, "nope", opts)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "wrong user name or password") {
			t.Fatalf("err = %v", err)
		}
		if _, ok := readConfig(t, dir)["auths"].(map[string]any)[reg.Addr]; ok {
			t.Error("a failed login was saved")
		}
	})
	t.Run("login", func(t *testing.T) {
		if err := Login(ctx, "https://"+reg.Addr, reg.User, reg.Password, opts); err != nil {
			t.Fatal(err)
		}
		cfg := readConfig(t, dir)
		auths := cfg["auths"].(map[string]any)
		want := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
		if got := auths[reg.Addr].(map[string]any)["auth"]; got != want {
			t.Errorf("auth = %v, want %s", got, want)
		}
		if auths["other.example"] == nil || cfg["experimental"] != "enabled" || cfg["proxies"] == nil {
			t.Errorf("login lost other content: %v", cfg)
		}
		fi, err := os.Stat(filepath.Join(dir, "config.json"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("config.json mode: %v %v", fi.Mode(), err)
		}
		if err := Push(ctx, src, img, ref, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := Pull(ctx, openStore(t), ref, opts); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rejected credentials", func(t *testing.T) {
		bad := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":wrong"))
		os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"auths":{"`+reg.Addr+`":{"auth":"`+auth+`"}}}`), 0o600)
		_, err := Pull(ctx, openStore(t), ref, Options{ConfigDir: bad, Insecure: []string{reg.Addr}})
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "were rejected") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("logout", func(t *testing.T) {
		if err := Logout(ctx, reg.Addr, opts); err != nil {
			t.Fatal(err)
		}
		cfg := readConfig(t, dir)
		auths := cfg["auths"].(map[string]any)
		if _, ok := auths[reg.Addr]; ok || auths["other.example"] == nil || cfg["experimental"] != "enabled" {
			t.Errorf("after logout: %v", cfg)
		}
		if err := Logout(ctx, reg.Addr, opts); !errors.Is(err, oci.ErrNotFound) {
			t.Errorf("second logout: %v", err)
		}
	})
}

func TestLoginNewConfig(t *testing.T) {
	ctx := context.Background()
	addr := testutil.StartRegistry(t)
	dir := filepath.Join(t.TempDir(), "docker")
	t.Setenv("DOCKER_CONFIG", dir)
	// A registry without auth accepts any login, as with docker.
	if err := Login(ctx, addr, "u", "p", Options{}); err != nil {
		t.Fatal(err)
	}
	auths := readConfig(t, dir)["auths"].(map[string]any)
	if auths[addr] == nil {
		t.Errorf("auths = %v", auths)
	}
}
