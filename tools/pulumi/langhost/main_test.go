package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A plugin's virtualenv is reused only while its requirements.txt is the one last installed.
func TestRequirementsStamp(t *testing.T) {
	root, venv := t.TempDir(), t.TempDir()
	stamp := filepath.Join(venv, ".mlops-ci-requirements.sha256")
	digest, err := requirementsDigest(root)
	if err != nil || digest != "" || !unchanged(stamp, digest) {
		t.Fatalf("no requirements.txt: want nothing to install, got %q %v", digest, err)
	}
	if err := os.WriteFile(filepath.Join(root, "requirements.txt"), []byte("pulumi==3.200.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, _ := requirementsDigest(root)
	if unchanged(stamp, first) {
		t.Fatal("requirements never installed: want an install")
	}
	if err := os.WriteFile(stamp, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	if !unchanged(stamp, first) {
		t.Fatal("requirements installed and unchanged: want none")
	}
	if err := os.WriteFile(filepath.Join(root, "requirements.txt"), []byte("pulumi==3.201.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if second, _ := requirementsDigest(root); unchanged(stamp, second) {
		t.Fatal("requirements changed: want an install")
	}
}
