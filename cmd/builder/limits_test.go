package main

import "testing"

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"64m": 64 << 20, "64M": 64 << 20, "64mb": 64 << 20, "64MiB": 64 << 20, "1g": 1 << 30, "1.5g": 3 << 29,
		"6291456": 6 << 20, "8192k": 8 << 20, "1t": 1 << 40, "64 m": 64 << 20,
	} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-64m", "64x", "64mm", "5m", "1024", "1e3m", "9999999999p"} {
		if got, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]float64{"1": 1, "0.5": 0.5, "1.5": 1.5, "0.01": 0.01, "2": 2} {
		if got, err := parseCPUs(in, 2); err != nil || got != want {
			t.Errorf("parseCPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "0", "0.001", "-1", "3", "NaN", "Inf"} {
		if got, err := parseCPUs(bad, 2); err == nil {
			t.Errorf("parseCPUs(%q) = %v, want an error", bad, got)
		}
	}
}
