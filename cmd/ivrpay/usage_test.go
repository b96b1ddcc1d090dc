package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// usageSections splits the top-level usage into each command's lines: a
// line "  ivrpay CMD …" starts CMD's, the indented lines after it continue
// it, and the blank line after the list ends the last.
func usageSections(t *testing.T) map[string]string {
	t.Helper()
	list := strings.SplitN(usage, "Usage:\n", 2)
	if len(list) != 2 {
		t.Fatal("the top-level usage has no Usage: section")
	}
	list[1], _, _ = strings.Cut(list[1], "\n\n")
	out := map[string]string{}
	cmd := ""
	for _, line := range strings.Split(list[1], "\n") {
		if rest, ok := strings.CutPrefix(line, "  ivrpay "); ok {
			cmd, _, _ = strings.Cut(rest, " ")
		}
		if cmd == "" {
			t.Fatalf("usage line %q comes before any command", line)
		}
		out[cmd] += line + "\n"
	}
	return out
}

// helpOf runs `ivrpay CMD -h` and returns what it printed.
func helpOf(t *testing.T, cmd string) string {
	t.Helper()
	_, stdout, stderr := runCLI(run, cmd, "-h")
	if !strings.Contains(stdout+stderr, "Usage") {
		t.Fatalf("ivrpay %s -h printed no usage: %q %q", cmd, stdout, stderr)
	}
	return stdout + stderr
}

var (
	// flagDefaultRE is a flag in the flag package's PrintDefaults.
	flagDefaultRE = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	// flagRE is a flag as usage texts write it.
	flagRE = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
	// adminCommandRE is a command line of admin -h: two spaces, then the
	// command's words up to its first argument or flag.
	adminCommandRE = regexp.MustCompile(`^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?)\b`)
)

// adminCommands are the commands admin -h lists ("platform create", "audit",
// …), alternatives after " | " included.
func adminCommands(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(helpOf(t, "admin"), "\n") {
		if !adminCommandRE.MatchString(line) {
			continue
		}
		for _, alt := range strings.Split(line, " | ") {
			if m := adminCommandRE.FindStringSubmatch("  " + strings.TrimSpace(alt)); m != nil && !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d commands in admin -h (%v); has its layout changed?", len(out), out)
	}
	return out
}

// TestUsageListsEveryCommand keeps the top-level usage true to the
// subcommands: every command of admin -h and every flag of serve -h is in
// it, and every flag it shows for a command is one that command has.
func TestUsageListsEveryCommand(t *testing.T) {
	t.Parallel()
	sections := usageSections(t)
	for _, cmd := range []string{"serve", "admin", "twiml", "simulate", "twilio-emulator", "demo", "loadtest"} {
		if sections[cmd] == "" {
			t.Errorf("the top-level usage does not list ivrpay %s", cmd)
		}
	}
	commands := adminCommands(t)
	t.Run("admin commands", func(t *testing.T) {
		for _, c := range commands {
			if !regexp.MustCompile(`(^|[\s|])` + regexp.QuoteMeta(c) + `(\s|$)`).MatchString(sections["admin"]) {
				t.Errorf("admin -h lists %q; the top-level usage does not", c)
			}
		}
		// And none it lists is unknown: a word pair starting with one of
		// admin's nouns is one of its commands.
		nouns := map[string]bool{}
		for _, c := range commands {
			noun, _, _ := strings.Cut(c, " ")
			nouns[noun] = true
		}
		for _, m := range regexp.MustCompile(`(?:^|[\s|])([a-z][a-z-]*) ([a-z][a-z-]*)\b`).FindAllStringSubmatch(sections["admin"], -1) {
			if c := m[1] + " " + m[2]; nouns[m[1]] && !slices.Contains(commands, c) {
				t.Errorf("the top-level usage lists admin %q, which admin -h does not", c)
			}
		}
	})
	t.Run("serve flags", func(t *testing.T) {
		for _, m := range flagDefaultRE.FindAllStringSubmatch(helpOf(t, "serve"), -1) {
			if !strings.Contains(sections["serve"], "--"+m[1]+" ") && !strings.Contains(sections["serve"], "--"+m[1]+"]") {
				t.Errorf("serve -h has --%s; the top-level usage does not", m[1])
			}
		}
	})
	for cmd, section := range sections {
		t.Run(cmd+" flags exist", func(t *testing.T) {
			help := helpOf(t, cmd)
			for _, m := range flagRE.FindAllStringSubmatch(section, -1) {
				if !strings.Contains(help, "  -"+m[1]+"\n") && !strings.Contains(help, "  -"+m[1]+" ") && !strings.Contains(help, "--"+m[1]) {
					t.Errorf("the top-level usage shows ivrpay %s --%s, which ivrpay %s -h does not", cmd, m[1], cmd)
				}
			}
		})
	}
}
