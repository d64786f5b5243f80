//go:build tools

// Package tools pins the YAML language host (github.com/pulumi/pulumi-yaml) for build.sh.
package tools

import _ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
