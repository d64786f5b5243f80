// Package provider maps the GitHub Terraform provider (integrations/terraform-provider-github) to a
// Pulumi package the way pulumi/pulumi-github 6.15.0 does, so that the Python SDK pulumi_github
// 6.15.0 talks to a plugin built here from Go modules.
//
// Written for mlops-ci after reading pulumi-github's provider/resources.go at v6.15.0: the same
// tokens (github:index/<camelName>:<PascalName>, functions github:index/get<X>:get<X>), the same
// configuration defaults and the same behaviour switches. Documentation edits, language SDK
// packaging details and the bridge-metadata history file of upstream are left out (see README.md).
package provider

import (
	"github.com/integrations/terraform-provider-github/v6/github"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

const (
	// Name is the Pulumi package name; plugins are looked up as pulumi-resource-<Name>.
	Name = "github"
	// Version is the pulumi-github release whose schema this build reproduces.
	Version = "6.15.0"
	// module is the single Pulumi module every token lives in ("github:index/...").
	module = "index"
)

// forceNewSelectedRepositories: organization secrets are replaced when their repository list changes.
var forceNewSelectedRepositories = map[string]*tfbridge.SchemaInfo{
	"selected_repository_ids": {ForceNew: tfbridge.True()},
}

// keepAsList pins a Terraform block that upstream now limits to one element (MaxItems: 1) as a list,
// as pulumi-github's recorded history does, so the wire shape matches the 6.15.0 SDKs.
func keepAsList(fields ...string) map[string]*tfbridge.SchemaInfo {
	m := make(map[string]*tfbridge.SchemaInfo, len(fields))
	for _, f := range fields {
		m[f] = &tfbridge.SchemaInfo{MaxItemsOne: tfbridge.False()}
	}
	return m
}

// Info returns the bridge's description of the provider. metadata is the bridge-metadata.json
// written by pulumi-tfgen-github (the runtime reads its auto-settings); tfgen starts from "{}".
func Info(metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:                       shimv2.NewProvider(github.NewProvider(Version, "")()),
		Name:                    Name,
		Version:                 Version,
		Description:             "A Pulumi package for creating and managing github cloud resources.",
		Keywords:                []string{"pulumi", "github"},
		License:                 "Apache-2.0",
		Homepage:                "https://pulumi.io",
		Repository:              "https://github.com/pulumi/pulumi-github",
		GitHubOrg:               "integrations",
		TFProviderModuleVersion: "v6",
		MetadataInfo:            tfbridge.NewProviderMetadata(metadata),
		Config: map[string]*tfbridge.SchemaInfo{
			"base_url": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"GITHUB_BASE_URL"},
				Value:   "https://api.github.com/",
			}},
			"token": {
				Default: &tfbridge.DefaultInfo{EnvVars: []string{"GITHUB_TOKEN"}},
				Secret:  tfbridge.True(),
			},
		},
		// Only what differs from the computed defaults: tokens come from MustComputeTokens below.
		Resources: map[string]*tfbridge.ResourceInfo{
			"github_actions_environment_secret":     {DeleteBeforeReplace: true},
			"github_repository_collaborator":        {DeleteBeforeReplace: true},
			"github_repository_deploy_key":          {DeleteBeforeReplace: true},
			"github_repository_autolink_reference":  {DeleteBeforeReplace: true},
			"github_actions_organization_secret":    {Fields: forceNewSelectedRepositories},
			"github_codespaces_organization_secret": {Fields: forceNewSelectedRepositories},
			"github_dependabot_organization_secret": {Fields: forceNewSelectedRepositories},
			"github_branch": {Fields: map[string]*tfbridge.SchemaInfo{
				"branch": {CSharpName: "BranchName"},
			}},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			// The one name that is not the standard camel case of the Terraform name.
			"github_app": {Tok: tfbridge.MakeDataSource(Name, module, "getGithubApp")},
		},
		Python: &tfbridge.PythonInfo{RespectSchemaVersion: true, PyProject: struct{ Enabled bool }{true}},
		JavaScript: &tfbridge.JavaScriptInfo{
			RespectSchemaVersion: true,
			DevDependencies:      map[string]string{"@types/node": "^10.0.0", "@types/mime": "^2.0.0"},
		},
		Golang: &tfbridge.GolangInfo{
			ImportBasePath:                 "github.com/pulumi/pulumi-github/sdk/v6/go/github",
			GenerateResourceContainerTypes: true,
			RespectSchemaVersion:           true,
		},
		CSharp: &tfbridge.CSharpInfo{RespectSchemaVersion: true, PackageReferences: map[string]string{"Pulumi": "3.*"}},

		EnableZeroDefaultSchemaVersion: true,
		EnableAccurateBridgePreview:    true,
		EnableRawStateDelta:            true,
	}
	for tf, fields := range maxItemsHistory {
		r := info.Resources[tf]
		if r == nil {
			r = &tfbridge.ResourceInfo{}
			info.Resources[tf] = r
		}
		if r.Fields == nil {
			r.Fields = map[string]*tfbridge.SchemaInfo{}
		}
		for name, s := range keepAsList(fields...) {
			r.Fields[name] = s
		}
	}

	info.MustComputeTokens(tokens.SingleModule("github_", module, tokens.MakeStandard(Name)))
	info.MustApplyAutoAliases()
	// Last: it auto-names the `name` input of every resource in info.Resources.
	info.SetAutonaming(255, "-")
	return info
}

// maxItemsHistory lists, per Terraform resource, the blocks that upstream declares with MaxItems: 1
// but that pulumi-github 6.15.0 still exposes as lists: its bridge-metadata.json history (not used
// here) predates the limit, and the bridge keeps a published shape until the next major version.
// Found with `compare_schema.py --all` against the 6.15.0 Python SDK; this is the only one.
var maxItemsHistory = map[string][]string{
	"github_repository_environment": {"reviewers"},
}
