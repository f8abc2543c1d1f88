package registry

import (
	"os/user"
	"strings"
)

// ciVariables are the CI job identifiers recorded in the audit actor, in
// this order, when set: GitHub Actions, GitLab CI, Jenkins, Buildkite,
// CircleCI, Azure Pipelines, Travis, Drone.
var ciVariables = []string{
	"GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB",
	"CI_PIPELINE_ID", "CI_JOB_ID",
	"BUILD_ID", "BUILD_NUMBER", "JOB_NAME",
	"BUILDKITE_BUILD_ID", "BUILDKITE_JOB_ID",
	"CIRCLE_WORKFLOW_ID", "CIRCLE_BUILD_NUM",
	"SYSTEM_JOBID", "TRAVIS_JOB_ID", "DRONE_BUILD_NUMBER",
}

// maxActorPart bounds each part of the actor.
const maxActorPart = 128

// actorName builds the audit actor: the user name, then " NAME=value" for
// each CI variable that is set (non-empty), in the order of ciVariables.
// Every part is cleaned to printable ASCII without spaces (others become
// '_') and cut to 128 bytes, so the actor never needs escaping and a hostile
// variable cannot forge structure.
func actorName(userName string, getenv func(string) string) string {
	var b strings.Builder
	b.WriteString(cleanActorPart(userName))
	if getenv != nil {
		for _, k := range ciVariables {
			if v := getenv(k); v != "" {
				b.WriteByte(' ')
				b.WriteString(k)
				b.WriteByte('=')
				b.WriteString(cleanActorPart(v))
			}
		}
	}
	return b.String()
}

func cleanActorPart(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > maxActorPart {
		s = s[:maxActorPart]
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f {
			b[i] = '_'
		}
	}
	return string(b)
}

// osUserName is the default user lookup: the OS account name, else $USER
// or $USERNAME, else "unknown".
func osUserName(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if getenv != nil {
		for _, k := range []string{"USER", "USERNAME", "LOGNAME"} {
			if v := getenv(k); v != "" {
				return v
			}
		}
	}
	return "unknown"
}
