// Command pulumi-language-python is mlops-ci's own minimal Python language host for the Pulumi CLI.
//
// The upstream host (module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is not
// served by the Go module proxy this project can reach, so this stands in for it. It implements the
// parts of the LanguageRuntime gRPC service that `pulumi preview/up` and `--policy-pack` use, on top
// of the published sdk/v3 module (protocol, Python toolchain resolution, policy proxy):
//
//   - Run: starts `python pulumi-language-python-exec ...` (our shim, installed next to this binary)
//     in the project's virtualenv, with the stack config as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS,
//     exactly as the engine sent it in the RunRequest (`{}` when it sent none).
//   - RunPlugin (kind analyzer): starts a Python policy pack as `python -u -m pulumi.policy <engine>
//     <pack dir>` in the pack's virtualenv; sdk.PolicyProxy answers the engine's stack-configuration
//     call and hands it to the pack as environment variables.
//   - RunPlugin (kind resource): starts a source-based component package (PulumiPlugin.yaml) as
//     `python <plugin dir> <args>` in the plugin's virtualenv, as upstream does for a `__main__.py`.
//   - InstallDependencies, GetPluginInfo, GetRequiredPackages/Plugins (none announced: the engine
//     loads providers when resources are registered), About, GetProgramDependencies.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The exec shim exits with this code after it has already reported the error to the engine.
const exitAfterReportedError = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine string
	exec   string
}

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.String("tracing", "", "ignored (no tracing)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	h := &host{exec: filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")}
	if _, err := os.Stat(h.exec); err != nil {
		fail(fmt.Errorf("missing exec shim: %w", err))
	}
	if flag.NArg() > 0 {
		h.engine = flag.Arg(0)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cancel := make(chan bool)
	go func() { <-ctx.Done(); close(cancel) }()
	if h.engine != "" {
		// Exit when the engine goes away.
		if err := rpcutil.Healthcheck(ctx, h.engine, 5*time.Minute, stop); err != nil {
			fail(err)
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
	})
	if err != nil {
		fail(err)
	}
	fmt.Printf("%d\n", handle.Port) // the engine reads the port from the first line
	if err := <-handle.Done; err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python (mlops-ci): %v\n", err)
	os.Exit(1)
}

func options(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory()}
	raw := info.GetOptions().AsMap()
	if v, ok := raw["virtualenv"]; ok {
		s, ok := v.(string)
		if !ok {
			return opts, errors.New("virtualenv option must be a string")
		}
		opts.Virtualenv = s
	}
	switch tc := raw["toolchain"]; tc {
	case nil, "pip":
		opts.Toolchain = toolchain.Pip
	default:
		return opts, fmt.Errorf("toolchain %v: only pip is supported by this language host", tc)
	}
	if _, ok := raw["typechecker"]; ok {
		return opts, errors.New("the typechecker option is not supported by this language host")
	}
	if isPlugin && opts.Virtualenv == "" {
		opts.Virtualenv = "venv"
	}
	return opts, nil
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engine = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	return &pulumirpc.AboutResponse{Executable: "python3", Metadata: map[string]string{"host": "mlops-ci"}}, nil
}

func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	opts, err := options(req.GetInfo(), false)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	opts, err := options(req.GetInfo(), req.GetIsPlugin())
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	// A component package run from this checkout (package/PulumiPlugin.yaml) shares the checkout's
	// virtualenv, which `make` creates from the pinned requirements, and has no requirements.txt: nothing
	// to install, and upstream's pip/setuptools/wheel upgrade must not touch it. A plugin with a
	// requirements.txt (a policy pack) installs as upstream does, unless its virtualenv holds the stamp of
	// these very requirements, left by the last install: changed requirements are installed again.
	venv, venvErr := tc.VirtualEnvPath(server.Context())
	plugin := venvErr == nil && req.GetIsPlugin()
	digest, err := requirementsDigest(opts.Root)
	if err != nil {
		return err
	}
	stamp := filepath.Join(venv, ".mlops-ci-requirements.sha256")
	if plugin && toolchain.IsVirtualEnv(venv) && unchanged(stamp, digest) {
		fmt.Fprintf(stdout, "plugin %s: virtualenv %s is up to date, nothing installed\n", opts.Root, venv)
		return closer.Close()
	}
	if err := tc.InstallDependencies(server.Context(), opts.Root, req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	if plugin && digest != "" {
		if err := os.WriteFile(stamp, []byte(digest), 0o600); err != nil {
			return err
		}
	}
	return closer.Close()
}

// requirementsDigest is the sha256 of the plugin's requirements.txt, or "" where it has none.
func requirementsDigest(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "requirements.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// unchanged: no requirements to install, or the stamp of the last install names these.
func unchanged(stamp, digest string) bool {
	if digest == "" {
		return true
	}
	last, err := os.ReadFile(stamp)
	return err == nil && string(last) == digest
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	opts, err := options(req.GetInfo(), false)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	args := []string{h.exec}
	flagArg := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flagArg("monitor", req.GetMonitorAddress())
	flagArg("engine", h.engine)
	flagArg("project", req.GetProject())
	flagArg("stack", req.GetStack())
	flagArg("organization", req.GetOrganization())
	flagArg("root_directory", req.GetInfo().GetRootDirectory())
	flagArg("pwd", req.GetPwd())
	flagArg("dry_run", strconv.FormatBool(req.GetDryRun()))
	flagArg("parallel", strconv.Itoa(int(req.GetParallel())))
	args = append(args, req.GetInfo().GetEntryPoint())
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	config, err := configJSON(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "PULUMI_CONFIG="+config, "PULUMI_CONFIG_SECRET_KEYS="+string(secrets))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() == exitAfterReportedError {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with non-zero exit code: %d", exit.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the Python program: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	switch req.GetKind() {
	case string(apitype.AnalyzerPlugin):
		return h.runPolicyPack(req, server)
	case string(apitype.ResourcePlugin):
		return runResourcePlugin(req, server)
	default:
		return fmt.Errorf("this language host runs policy packs and resource plugins only, not %q plugins", req.GetKind())
	}
}

// runResourcePlugin runs a source-based component package (PulumiPlugin.yaml, runtime python) as upstream's
// host does for a plugin directory holding a `__main__.py` (sdk/python/cmd/pulumi-language-python RunPlugin):
// `python <plugin dir> <args>` in the plugin's virtualenv, in the engine's working directory, its output
// streamed back (the provider announces its port on stdout).
func runResourcePlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	opts, err := options(req.GetInfo(), true)
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	cmd, err := tc.Command(server.Context(), append([]string{req.GetInfo().GetProgramDirectory()}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	cmd.Dir = req.GetPwd()
	cmd.Env = append(cmd.Env, req.GetEnv()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return exitStatus(server, err)
	}
	return closer.Close()
}

// exitStatus hands a plugin's exit code to the engine, or the error that kept it from running.
func exitStatus(server pulumirpc.LanguageRuntime_RunPluginServer, err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(status.ExitStatus())},
			})
		}
	}
	return err
}

func (h *host) runPolicyPack(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	ctx := server.Context()
	opts, err := options(req.GetInfo(), false)
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	dir := req.GetInfo().GetProgramDirectory()
	args := append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
	cmd, err := tc.Command(ctx, append(args, dir)...)
	if err != nil {
		return err
	}
	cmd.Dir = dir

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	// The pack's library (pulumi-policy) expects the stack's identity and config in its environment;
	// the proxy takes the engine's ConfigureStack call, then forwards everything to the pack.
	proxy, stdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// From here on the engine waits on the proxy: any failure must reach it, or it waits forever.
	if err := h.startPolicyPack(ctx, proxy, cmd, req.GetEnv()); err != nil {
		proxy.Abort(err)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exitStatus(server, err)
		}
		fmt.Fprintf(stderr, "policy pack %s: %v\n", dir, err)
		return err
	}
	return closer.Close()
}

// startPolicyPack hands the stack's identity and config to the pack's environment (pulumi-policy reads
// them from there), starts it and proxies the engine's calls to it until it exits.
func (h *host) startPolicyPack(ctx context.Context, proxy *sdk.PolicyProxy, cmd *exec.Cmd, extraEnv []string) error {
	stack, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	if stack != nil {
		setEnv := func(k, v string) {
			if v != "" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		setEnv("PULUMI_ORGANIZATION", stack.GetOrganization())
		setEnv("PULUMI_PROJECT", stack.GetProject())
		setEnv("PULUMI_STACK", stack.GetStack())
		setEnv("PULUMI_DRY_RUN", strconv.FormatBool(stack.GetDryRun()))
		config, err := configJSON(stack.GetConfig())
		if err != nil {
			return err
		}
		setEnv("PULUMI_CONFIG", config)
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	if err := cmd.Start(); err != nil {
		return err
	}
	return proxy.Attach(ctx, cmd)
}

// configJSON is the stack's config as the PULUMI_CONFIG the Python SDK reads: a JSON object, `{}` when
// the stack has none (the engine then sends no map at all, which json.Marshal writes as `null`: the SDK's
// set_all_config fails on it). Upstream's host (sdk/python/cmd/pulumi-language-python, constructConfig)
// leaves PULUMI_CONFIG unset instead, which the SDK also reads as `{}`; `{}` also keeps a PULUMI_CONFIG of
// the CLI's own environment from reaching the program.
func configJSON(config map[string]string) (string, error) {
	if config == nil {
		config = map[string]string{}
	}
	text, err := json.Marshal(config)
	return string(text), err
}
