"""The hostile stack files, by class of issue 22: each a stack file that `make plan`, `make check`
and `pulumi up` must refuse with one clear error naming the key (or file) and the rule.

A case is (class, name, stack file text, words every refusal must hold). Words are the key, or
the file's problem, and the rule's wording.
"""

from __future__ import annotations

import dataclasses

HEAD = "config:\n  gcp:project: acme-ml-test\n  mlops-ci:platform: {platform}\n  mlops-ci:repository: {repository}\n"
REPOSITORIES = {"github": "acme-ml/churn", "gitlab": "acme-ml/research/churn"}
# A ciphertext in the form `pulumi config set --secret` writes (nonce 12 bytes, sealed 32).
CIPHERTEXT = "v1:AAECAwQFBgcICQoL:" + "A" * 43 + "="


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str
    """The issue's class: namespaces, platform-api, grants, environment, secrets, team-files, naming, shaping,
    parser, printing."""
    name: str
    text: str
    words: tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def stack(self) -> str:
        return f"{self.kind}-{self.name}"

    @property
    def test_id(self) -> str:
        """The stack's name with each character that is not printable ASCII as U+XXXX: `make mutation` (mutmut) names
        the tests to run by id, and pytest found no test by the id it escapes itself (`printing-blank\\u3164stack`)
        in a process that had collected the tests before."""
        return "".join(c if c.isascii() and c.isprintable() else f"U+{ord(c):04X}" for c in self.stack)


def stack(*lines: str, platform: str = "github", head: bool = True) -> str:
    top = HEAD.format(platform=platform, repository=REPOSITORIES[platform]) if head else "config:\n"
    return top + "".join(f"  {line}\n" for line in lines)


def case(kind: str, name: str, text: str, *words: str, environment: dict[str, str] | None = None) -> Case:
    return Case(kind, name, text, words, tuple((environment or {}).items()))


NAMESPACES = [
    case("namespaces", "gcp-typo", stack("gcp:projet: acme-ml-other"), "gcp:projet", "did you mean project"),
    case("namespaces", "gcp-credentials", stack("gcp:credentials: '{}'"), "gcp:credentials", "credentials of `pulumi up`"),
    case("namespaces", "gcp-access-token", stack("gcp:accessToken: ya29.token"), "gcp:accessToken", "never a stack file"),
    case(
        "namespaces",
        "gcp-impersonate",
        stack("gcp:impersonateServiceAccount: a@b.iam.gserviceaccount.com"),
        "gcp:impersonateServiceAccount",
        "credentials",
    ),
    case(
        "namespaces",
        "gcp-impersonate-delegates",
        stack("gcp:impersonateServiceAccountDelegates: '[]'"),
        "gcp:impersonateServiceAccountDelegates",
        "credentials",
    ),
    case(
        "namespaces",
        "gcp-storage-endpoint",
        stack("gcp:storageCustomEndpoint: http://evil.example/storage/v1/"),
        "gcp:storageCustomEndpoint",
        "another host",
    ),
    case(
        "namespaces",
        "gcp-iam-endpoint",
        stack("gcp:iamCredentialsCustomEndpoint: http://evil.example/v1/"),
        "gcp:iamCredentialsCustomEndpoint",
        "another host",
    ),
    case("namespaces", "gcp-universe", stack("gcp:universeDomain: evil.example"), "gcp:universeDomain", "another host"),
    # The provider's regional endpoints are other hosts (terraform-provider-google's transport: PreferRegionalEndpoints).
    case("namespaces", "gcp-regional", stack("gcp:preferRegionalEndpoints: true"), "gcp:preferRegionalEndpoints", "another host"),
    case("namespaces", "gcp-global", stack("gcp:preferGlobalEndpoints: true"), "gcp:preferGlobalEndpoints", "another host"),
    case("namespaces", "gcp-region", stack("gcp:region: europe-west6"), "gcp:region", "gcp:project only"),
    case("namespaces", "gcp-labels", stack('gcp:defaultLabels: \'{"a": "b"}\''), "gcp:defaultLabels", "gcp:project only"),
    case(
        "namespaces", "no-hyphen", stack("mlopsci:branch: main"), "mlopsci:branch", "unknown namespace", "did you mean mlops-ci"
    ),
    case(
        "namespaces",
        "underscore",
        stack("mlops_ci:access: admin"),
        "mlops_ci:access",
        "unknown namespace",
        "did you mean mlops-ci",
    ),
    case(
        "namespaces",
        "unicode-hyphen",
        stack("mlops\u2010ci:access: admin"),
        "mlops\\u2010ci:access",
        "U+2010 HYPHEN",
        "did you mean mlops-ci",
    ),
    case(
        "namespaces",
        "minus-sign",
        stack("mlops\u2212ci:access: admin"),
        "mlops\\u2212ci:access",
        "U+2212 MINUS SIGN",
        "did you mean mlops-ci",
    ),
    case(
        "namespaces",
        "cyrillic-es",
        stack("mlops-\u0441i:access: admin"),
        "mlops-\\u0441i:access",
        "U+0441 CYRILLIC SMALL LETTER ES",
        "did you mean mlops-ci",
    ),
    case(
        "namespaces",
        "cyrillic-key",
        stack("mlops-ci:bucketN\u0430me: x-data"),
        "mlops-ci:bucketN\\u0430me",
        "U+0430",
        "did you mean bucketName",
    ),
    case("namespaces", "fullwidth", stack("\uff47cp:project: acme-ml-other"), "\\uff47cp:project", "did you mean gcp"),
    case(
        "namespaces",
        "zero-width",
        stack("mlops-ci:acc\u200bess: admin"),
        "mlops-ci:acc\\u200bess",
        "U+200B ZERO WIDTH SPACE",
        "did you mean access",
    ),
    case("namespaces", "other-cloud", stack("aws:region: us-east-1"), "aws:region", "unknown namespace"),
    case("namespaces", "case", stack("mlops-ci:BucketName: x-data"), "mlops-ci:BucketName", "did you mean bucketName"),
    case("namespaces", "github-owner", stack("github:owner: someone-else"), "github:owner", "unknown key"),
    case("namespaces", "gitlab-insecure", stack("gitlab:insecure: true", platform="gitlab"), "gitlab:insecure", "unknown key"),
    case("namespaces", "plain-token", stack("github:token: ghp_0123456789abcdef"), "github:token", "must be encrypted"),
    case("namespaces", "other-platform", stack("gitlab:baseUrl: https://gitlab.evil.example/"), "gitlab:baseUrl", "not used"),
    case("namespaces", "secret-project", stack(f"mlops-ci:branch:\n    secure: {CIPHERTEXT}"), "mlops-ci:branch", "not a secret"),
]

# Where `pulumi up` sends the platform's token: github.com's or gitlab.com's API, or one Pulumi.yaml's
# `platform.baseUrls` lists (https://gitlab.acme.example/api/v4/ here), never one of the stack file's choosing.
ELSEWHERE = "not an API the platform lets stack files send its token to"
PLATFORM_API = [
    case("platform-api", "github-elsewhere", stack("github:baseUrl: https://evil.example/api/v3/"), "github:baseUrl", ELSEWHERE),
    case(
        "platform-api",
        "gitlab-elsewhere",
        stack("gitlab:baseUrl: https://evil.example/api/v4/", platform="gitlab"),
        "gitlab:baseUrl",
        ELSEWHERE,
    ),
    case(
        "platform-api",
        "allowed-host-as-subdomain",
        stack("gitlab:baseUrl: https://gitlab.acme.example.evil.example/api/v4/", platform="gitlab"),
        "gitlab:baseUrl",
        ELSEWHERE,
    ),
    case(
        "platform-api",
        "allowed-host-other-port",
        stack("gitlab:baseUrl: https://gitlab.acme.example:8443/api/v4/", platform="gitlab"),
        "gitlab:baseUrl",
        ELSEWHERE,
    ),
    case(
        "platform-api",
        "unclosed-ipv6-bracket",
        stack("gitlab:baseUrl: 'https://[::1/api/v4/'", "mlops-ci:bucketName: Bad_Bucket", platform="gitlab"),
        "gitlab:baseUrl",
        "an https:// URL",
        "mlops-ci:bucketName",
    ),
    case(
        "platform-api",
        "github-metadata-server",
        stack("github:baseUrl: https://169.254.169.254/"),
        "github:baseUrl",
        ELSEWHERE,
    ),
    case(
        "platform-api",
        "allowed-for-the-other-platform",
        stack("github:baseUrl: https://gitlab.acme.example/api/v4/x/"),
        "github:baseUrl",
        ELSEWHERE,
    ),
    case(
        "platform-api",
        "secure",
        stack(f"gitlab:baseUrl:\n    secure: {CIPHERTEXT}", platform="gitlab"),
        "gitlab:baseUrl",
        "not a secret",
    ),
]

# Item 9: Pulumi.yaml allows acme-{stack}-dvc, each stack its own bucket (the stack here is grants-<name>).
NOT_ALLOWED = "not a bucket the platform lets this stack use"
GRANTS = [
    case(
        "grants",
        "other-team",
        stack("mlops-ci:existingBucket: acme-nlp-team-dvc", "mlops-ci:access: admin"),
        "mlops-ci:existingBucket",
        NOT_ALLOWED,
        "for this stack acme-grants-other-team-dvc",
    ),
    case("grants", "state-bucket", stack("mlops-ci:existingBucket: acme-pulumi-state"), "mlops-ci:existingBucket", NOT_ALLOWED),
    case(
        "grants",
        "own-name-inside",
        stack("mlops-ci:existingBucket: acme-grants-own-name-inside-dvc-archive"),
        "mlops-ci:existingBucket",
        NOT_ALLOWED,
    ),
]

ENVIRONMENT = [
    case("environment", name, stack(), variable, *words, environment={variable: value})
    for name, variable, value, words in [
        ("project", "PULUMI_CONFIG_GCP_PROJECT", "acme-ml-other", ("as gcp:project",)),
        ("branch", "PULUMI_CONFIG_MLOPS_CI_BRANCH", "evil", ("as mlops-ci:branch",)),
        ("bucket", "PULUMI_CONFIG_MLOPS_CI_EXISTINGBUCKET", "platform-state", ("as mlops-ci:existingBucket",)),
        ("token", "PULUMI_CONFIG_GITHUB_TOKEN", "ghp_x", ("as github:token",)),
        ("base-url", "PULUMI_CONFIG_GITHUB_BASEURL", "https://evil.example/", ("as github:baseUrl",)),
        ("credentials", "PULUMI_CONFIG_GCP_CREDENTIALS", "{}", ("as config",)),
        ("endpoint", "PULUMI_CONFIG_GCP_STORAGECUSTOMENDPOINT", "http://evil/", ("as config",)),
        ("anything", "PULUMI_CONFIG_ANYTHING", "x", ("as config",)),
    ]
]
ENVIRONMENT.append(
    case(
        "environment",
        "config-json",
        stack(),
        "gcp:credentials",
        "PULUMI_CONFIG environment",
        environment={"PULUMI_CONFIG": '{"gcp:credentials": "{}"}'},
    )
)
# PULUMI_CONFIG is JSON: a key it holds can be any JSON value, not the text the CLI hands over (`pulumi.Config.get`
# returns it as it is), and null is no value at all to `require`.
ENVIRONMENT.extend(
    case(
        "environment",
        f"config-json-tags-{name}",
        stack(),
        "pulumi:tags: must be an object of strings",
        "pulumi:tags: from the PULUMI_CONFIG environment variable",
        environment={"PULUMI_CONFIG": f'{{"pulumi:tags": {value}}}'},
    )
    for name, value in [("null", "null"), ("number", "5"), ("object", '{"team": "ml"}')]
)
# Not a JSON object: the SDK parses PULUMI_CONFIG on every config read and fails on it (a traceback before).
ENVIRONMENT.extend(
    case(
        "environment",
        f"config-{name}",
        stack(),
        "PULUMI_CONFIG (environment)",
        "not a JSON object",
        environment={"PULUMI_CONFIG": value},
    )
    for name, value in [
        ("not-json", "{gcp:project: x"),
        ("empty", ""),
        ("list", '["gcp:project"]'),
        ("text", '"x"'),
        # Nested past Python's recursion limit: json.loads raises RecursionError, not ValueError (a traceback before).
        ("deep", "[" * 100_000),
    ]
)
# A key the stack file lacks, from PULUMI_CONFIG as a JSON value that is no text: `pulumi.Config.get` returns it as it
# is (a traceback in the program before); refused as from the environment, the key read as absent.
ENVIRONMENT.extend(
    case(
        "environment",
        f"config-json-{name}",
        text,
        f"{key}: from the PULUMI_CONFIG environment variable",
        *words,
        environment={"PULUMI_CONFIG": f'{{"{key}": {value}}}'},
    )
    for name, key, value, text, words in [
        ("base-url-number", "github:baseUrl", "5", stack(), ()),
        ("base-url-list", "github:baseUrl", '["https://evil.example/"]', stack(), ()),
        (
            "project-number",
            "gcp:project",
            "5",
            stack("mlops-ci:platform: github", "mlops-ci:repository: acme-ml/churn", head=False),
            ("gcp:project: required",),
        ),
    ]
)

SECRETS = [
    case(
        "secrets",
        "plain-token",
        stack("github:token:\n    secure: ghp_0123456789abcdef0123"),
        "github:token",
        "not Pulumi ciphertext",
    ),
    case(
        "secrets",
        "plain-gitlab",
        stack("gitlab:token:\n    secure: glpat-abcdefghij0123456789", platform="gitlab"),
        "gitlab:token",
        "not Pulumi ciphertext",
    ),
    case("secrets", "v1-garbage", stack("github:token:\n    secure: v1:abc"), "github:token", "not Pulumi ciphertext"),
    case(
        "secrets",
        "v1-short-nonce",
        stack("github:token:\n    secure: v1:AAAA:" + "A" * 44),
        "github:token",
        "not a nonce and a ciphertext",
    ),
    case("secrets", "not-text", stack("github:token:\n    secure: 1234"), "github:token", "not text"),
    case("secrets", "a-list", stack("github:token:\n    secure: [a, b]"), "github:token", "not text"),
    case("secrets", "empty", stack("github:token:\n    secure: ''"), "github:token", "`pulumi config set --secret github:token"),
    # Only the platform's token is a secret: any other key mlops-ci reads is told to be written plain, not to be encrypted.
    case("secrets", "tags-empty", stack("pulumi:tags:\n    secure: ''"), "pulumi:tags", "the key is no secret"),
    case("secrets", "branch-garbage", stack("mlops-ci:branch:\n    secure: main"), "mlops-ci:branch", "the key is no secret"),
    # A key mlops-ci does not read is never told to be written plain: gcp:credentials is a credential.
    case(
        "secrets",
        "credentials-garbage",
        stack("gcp:credentials:\n    secure: '{}'"),
        "gcp:credentials",
        "mlops-ci reads no such key: remove it",
    ),
    case("secrets", "token-typo-garbage", stack("github:tokn:\n    secure: ghp_x"), "github:tokn", "mlops-ci reads no such key"),
    case(
        "secrets",
        "base64-with-salt",
        "encryptionsalt: v1:c2FsdA==:v1:AAECAwQFBgcICQoL:AAAAAAAAAAAAAAAAAAAAAA==\n"
        + stack("github:token:\n    secure: aHVudGVyMmh1bnRlcjJodW50ZXIy"),
        "github:token",
        "encryptionsalt",
    ),
    case("secrets", "spaces", stack("github:token:\n    secure: my token value"), "github:token", "not Pulumi ciphertext"),
    # Base64 of the token itself, in either form: it decodes to text, which ciphertext never does.
    case(
        "secrets",
        "base64-of-the-token",
        stack("github:token:\n    secure: Z2hwXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"),
        "github:token",
        "(base64 of plain text, not ciphertext: anyone who decodes it reads it)",
    ),
    case(
        "secrets",
        "v1-base64-of-the-token",
        "encryptionsalt: v1:c2FsdA==:v1:AAECAwQFBgcICQoL:AAAAAAAAAAAAAAAAAAAAAA==\n"
        + stack("github:token:\n    secure: v1:AAECAwQFBgcICQoL:Z2hwXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"),
        "github:token",
        "(base64 of plain text, not ciphertext: anyone who decodes it reads it)",
    ),
]

TEAM_FILES = [
    case(
        "team-files", "gitlab-dvc-yaml", stack("mlops-ci:ciFile: dvc.yaml", platform="gitlab"), "mlops-ci:ciFile", "DVC pipeline"
    ),
    case(
        "team-files",
        "gitlab-sub-dvc-yaml",
        stack("mlops-ci:ciFile: stages/dvc.yaml", platform="gitlab"),
        "mlops-ci:ciFile",
        "DVC pipeline",
    ),
    case(
        "team-files", "gitlab-params", stack("mlops-ci:ciFile: params.yaml", platform="gitlab"), "mlops-ci:ciFile", "DVC pipeline"
    ),
    case(
        "team-files",
        "gitlab-dvc-dir",
        stack("mlops-ci:ciFile: .dvc/ci.yml", platform="gitlab"),
        "mlops-ci:ciFile",
        "DVC pipeline",
    ),
    case("team-files", "gitlab-upper", stack("mlops-ci:ciFile: DVC.YAML", platform="gitlab"), "mlops-ci:ciFile", "DVC pipeline"),
    case(
        "team-files", "github-dvc-yaml", stack("mlops-ci:ciFile: .github/workflows/dvc.yaml"), "mlops-ci:ciFile", "DVC pipeline"
    ),
    case(
        "team-files",
        "requirements-dvc-yaml",
        stack("mlops-ci:requirementsFile: dvc.yaml"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "requirements-lock",
        stack("mlops-ci:requirementsFile: dvc.lock"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "requirements-dvc-file",
        stack("mlops-ci:requirementsFile: data.dvc"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "requirements-gitignore",
        stack("mlops-ci:requirementsFile: .gitignore"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "requirements-dvc-config",
        stack("mlops-ci:requirementsFile: .dvc/config"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "requirements-dvcignore",
        stack("mlops-ci:requirementsFile: .dvcignore"),
        "mlops-ci:requirementsFile",
        "DVC pipeline",
    ),
    case(
        "team-files",
        "each-other",
        stack("mlops-ci:ciFile: ci/requirements.yml", "mlops-ci:requirementsFile: ci/requirements.yml", platform="gitlab"),
        "mlops-ci:ciFile",
        "the same file as mlops-ci:requirementsFile",
    ),
]

NAMING = (
    [
        case("naming", f"bucket-{value}", stack(f"mlops-ci:bucketName: {value}"), "mlops-ci:bucketName", words)
        for value, words in [
            ("g00gle-data", "misspelling"),
            ("goog1e-data", "misspelling"),
            ("my-gogle-data", "misspelling"),
            ("team-googel", "misspelling"),
            ("team-goo-gle", "misspelling"),
            ("9oogle-data", "misspelling"),
            ("goog-data", "'goog' prefix"),
            ("10.0.0.1", "IP address"),
            ("999.1.1.1", "IP address"),
            ("01.02.03.04", "IP address"),
        ]
    ]
    + [
        case(
            "naming",
            f"project-{value}",
            stack(head=False) + f"  gcp:project: {value}\n  mlops-ci:platform: github\n  mlops-ci:repository: a/b\n",
            "gcp:project",
            words,
        )
        for value, words in [
            ("acme-google-ml", "cannot contain google"),
            ("null-project", "cannot contain null"),
            ("undefined-ml", "cannot contain undefined"),
            ("acme-ssl-ml", "cannot contain ssl"),
            ("acme1", "6-30 characters"),
            ("a" * 31, "6-30 characters"),
            ("1acme-ml", "starting with a letter"),
        ]
    ]
    + [
        case(
            "naming",
            f"location-{value.replace(' ', '_')}",
            stack(f"mlops-ci:bucketLocation: '{value}'"),
            "mlops-ci:bucketLocation",
            "Cloud Storage location",
            *more,
        )
        for value, more in [
            ("europe-west66", ("did you mean europe-west6",)),
            ("eurpe-west6", ("did you mean europe-west6",)),
            ("mars-north1", ()),
            ("us-central", ("did you mean us-central1",)),
            ("europe west6", ()),
            ("EUR9", ()),
        ]
    ]
)

SHAPING = [
    case("shaping", "rotation-long", stack("mlops-ci:keyRotation: " + "r" * 200), "mlops-ci:keyRotation", "1-64"),
    case("shaping", "rotation-newline", stack('mlops-ci:keyRotation: "2026\\nrotated"'), "mlops-ci:keyRotation", "no control"),
    case("shaping", "rotation-escape", stack('mlops-ci:keyRotation: "\\e[31m2026"'), "mlops-ci:keyRotation", "no control"),
    case("shaping", "rotation-space", stack("mlops-ci:keyRotation: 2026 Q1"), "mlops-ci:keyRotation", "a label such as 2026-11"),
    case(
        "shaping",
        "rotation-gitlab-long",
        stack("mlops-ci:keyRotation: " + "r" * 250, "mlops-ci:report: true", platform="gitlab"),
        "mlops-ci:keyRotation",
        "1-64",
    ),
    case(
        "shaping",
        "trust-branch-key-mode",
        stack("mlops-ci:auth: key", "mlops-ci:trustBranchOnly: true"),
        "mlops-ci:trustBranchOnly",
        "applies to auth workload-identity only",
    ),
    case(
        "shaping", "environment-dotdot", stack("mlops-ci:githubEnvironment: '..'"), "mlops-ci:githubEnvironment", "not only dots"
    ),
    case("shaping", "environment-dot", stack("mlops-ci:githubEnvironment: '.'"), "mlops-ci:githubEnvironment", "not only dots"),
    case(
        "shaping",
        "environment-pages",
        stack("mlops-ci:githubEnvironment: github-pages"),
        "mlops-ci:githubEnvironment",
        "GitHub manages itself",
    ),
    case(
        "shaping",
        "environment-copilot",
        stack("mlops-ci:githubEnvironment: Copilot"),
        "mlops-ci:githubEnvironment",
        "GitHub manages itself",
    ),
    case(
        "shaping",
        "environment-slash",
        stack("mlops-ci:githubEnvironment: prod/eu"),
        "mlops-ci:githubEnvironment",
        "environment name",
    ),
    case(
        "shaping",
        "environment-long",
        stack("mlops-ci:githubEnvironment: " + "e" * 256),
        "mlops-ci:githubEnvironment",
        "at most 255",
    ),
    case("shaping", "branch-tab", stack('mlops-ci:branch: "main\\t"'), "mlops-ci:branch", "no control"),
    case(
        "shaping",
        "repository-newline",
        stack(head=False) + '  gcp:project: acme-ml-test\n  mlops-ci:platform: github\n  mlops-ci:repository: "a/b\\nc"\n',
        "mlops-ci:repository",
        "no control",
    ),
]

_LAUGHS = "".join(f"  t:l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10))
PARSER = [
    case("parser", "billion-laughs", stack() + _LAUGHS, "alias bomb"),
    case("parser", "deep-flow", stack() + "  t:deep: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),
    case(
        "parser",
        "deep-block",
        stack() + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(40)) + "  " * 41 + "v\n",
        "nested deeper than 32 levels",
    ),
    case(
        "parser",
        "alias-chain",
        stack() + "  t:a0: &a0 [x]\n" + "".join(f"  t:a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40)),
        "once its aliases are expanded",
    ),
    case("parser", "recursive-alias", stack("t:loop: &loop [*loop]"), "stands for a value that contains it"),
    case("parser", "complex-key", stack("? [a, b]\n  : x"), "a list or mapping as a key"),
    case("parser", "flow-complex-key", stack("t:x: {[a]: b}"), "a list or mapping as a key"),
    case("parser", "top-level-list", "- config\n- x\n", "expected a mapping"),
    case("parser", "top-level-scalar", "just text\n", "expected a mapping"),
    case("parser", "config-scalar", "config: 5\n", "expected a mapping"),
    case("parser", "binary-tag", stack("t:x: !!binary aGVsbG8="), "binary"),
    case("parser", "set-tag", stack("t:x: !!set {a, b}"), "set"),
    case("parser", "python-tag", stack("t:x: !!python/object:os.system x"), "python/object"),
    case("parser", "huge-file", stack("t:pad: '" + "x" * (1 << 20) + "'"), "at most 1048576"),
    case(
        "parser",
        "environment-section",
        "environment:\n  - platform/secrets\n" + stack(),
        "'environment'",
        "outside the stack file",
    ),
    case("parser", "top-level-typo", "confg:\n  gcp:project: acme-ml-test\n", "'confg'", "did you mean config"),
    case("parser", "huge-integer", stack("mlops-ci:keyRotation: " + "9" * 5000), "mlops-ci:keyRotation", "at most 255"),
    case("parser", "key-without-name", stack("'gcp:': x"), "gcp:", "unknown key"),
    case("parser", "two-colons", stack("mlops-ci:a:b: x"), "config keys are <namespace>:<name>"),
    case("parser", "merge-key", stack("<<: {mlops-ci:access: admin}"), "merge key (<<)", "write each key out"),
    case("parser", "merge-key-alias", stack("t:x: &m {gcp:credentials: x}", "<<: *m"), "merge key (<<)"),
    # Read from the file the plan or check was given (--stacks), not from stacks/ of the project.
    case("parser", "unquoted-number", stack("mlops-ci:pythonVersion: 3.10"), "mlops-ci:pythonVersion = 3.10 (unquoted)"),
    case("parser", "tags-as-text", stack('pulumi:tags: \'{"team": "ml"}\''), "pulumi:tags: written as text"),
    # JSON nested past Python's recursion limit: json.loads raises RecursionError, not ValueError (a traceback before).
    case("parser", "tags-deep", stack("pulumi:tags: '" + "[" * 100_000 + "'"), "pulumi:tags: must be an object of strings"),
]

# Terminal control in keys and values: the refusal shows them escaped (checked for every case).
PRINTING = [
    case("printing", "escape-in-key", stack('"mlops-ci:\\e[2Jx": y'), "mlops-ci:\\x1b[2Jx", "unknown key"),
    case("printing", "escape-in-value", stack('mlops-ci:branch: "\\e[31mmain"'), "mlops-ci:branch", "\\x1b[31mmain"),
    case("printing", "bidi-in-value", stack('mlops-ci:branch: "ma\\u202Ein"'), "mlops-ci:branch", "ma\\u202ein"),
    case("printing", "bidi-in-key", stack('"mlops-ci:bra\\u202Ench": x'), "mlops-ci:bra\\u202ench", "unknown key"),
    case("printing", "newline-in-key", stack('"gcp:a\\nOK    fake": x'), "gcp:a\\nOK    fake", "gcp:project only"),
    case("printing", "carriage-return", stack('mlops-ci:dvcRemotePath: "dvc\\rstore"'), "mlops-ci:dvcRemotePath", "dvc\\rstore"),
    case("printing", "bell-in-secret-name", stack('mlops-ci:secretName: "KEY\\a"'), "mlops-ci:secretName", "KEY\\x07"),
    case("printing", "osc-title", stack('mlops-ci:bucketName: "\\e]0;pwned\\a"'), "mlops-ci:bucketName", "\\x1b]0;pwned\\x07"),
    case("printing", "escape-in-yaml-error", stack('t:x: "\\e[2J" : ['), "invalid YAML"),
    # Printable but not what it looks like: shown in ASCII, so a refused value never reads as a valid one.
    case(
        "printing", "look-alike-value", stack('mlops-ci:access: "\\u0430dmin"'), "mlops-ci:access = '\\u0430dmin'", "one of pull"
    ),
    case(
        "printing",
        "blank-letter-value",
        stack('mlops-ci:access: "admin\\u3164"'),
        "mlops-ci:access = 'admin\\u3164'",
        "one of pull",
    ),
    case(
        "printing", "combining-mark", stack('mlops-ci:branch: "main\\u0307"'), "mlops-ci:branch = 'main\\u0307'", "a branch name"
    ),
    case("printing", "blank\u3164stack", stack(), "printing-blank\\u3164stack", "stack names may only contain"),
]

CASES = NAMESPACES + PLATFORM_API + GRANTS + ENVIRONMENT + SECRETS + TEAM_FILES + NAMING + SHAPING + PARSER + PRINTING
