package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runValidate runs "geolab validate args..." and returns stdout, stderr and
// the error main would print.
func runValidate(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newValidateCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true // as the root sets them
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestValidateShippedTopologies(t *testing.T) {
	dir := filepath.Join("..", "..", "topologies")
	files := []string{
		filepath.Join(dir, "single-region.yaml"),
		filepath.Join(dir, "two-region.yaml"),
		filepath.Join(dir, "three-region.yaml"),
	}
	out, errOut, err := runValidate(t, files...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	want := files[0] + ": ok (1 region, 2 gateways)\n" +
		files[1] + ": ok (2 regions, 4 gateways)\n" +
		files[2] + ": ok (3 regions, 6 gateways)\n"
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestValidateBadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join("..", "..", "topologies", "two-region.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	yaml := "name: bad\nsource: test\nregions:\n  - name: us-east\n    gateways: 0\n"
	if err := os.WriteFile(bad, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runValidate(t, bad, good)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 files invalid") {
		t.Fatalf("error %v, want 1 of 2 files invalid", err)
	}
	if want := bad + ":5: regions[0].gateways: must be 1..16, got 0\n"; errOut != want {
		t.Fatalf("stderr %q, want %q", errOut, want)
	}
	if !strings.Contains(out, good+": ok") || strings.Contains(out, bad) {
		t.Fatalf("stdout %q", out)
	}
}

func TestValidateMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, errOut, err := runValidate(t, missing)
	if err == nil || !strings.Contains(errOut, missing) || !strings.Contains(errOut, "no such file") {
		t.Fatalf("error %v, stderr %q", err, errOut)
	}
	if _, _, err := runValidate(t); err == nil {
		t.Fatal("validate with no file succeeded")
	}
}
