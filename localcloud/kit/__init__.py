"""The local chapter's kit: what the chapter (localcloud/chapter.py), the benchmarks (bench/) and the
end-to-end tests (tests/e2e) share: the sample DVC project, the CI runners, the stand-ins of the APIs a CI
job calls, the offline deployment of an example stack and the wheelhouse the jobs install from."""
