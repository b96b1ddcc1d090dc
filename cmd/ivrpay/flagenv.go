package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// envName is the environment variable that backs a flag: IVRPAY_ and the
// flag's name upper-cased with dashes as underscores (--base-url → IVRPAY_BASE_URL).
func envName(flagName string) string {
	return "IVRPAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args into fs like fs.Parse, with two additions every
// subcommand wants. Flags may follow positional arguments ("check FILE
// --amount 10.00"), since Go's flag package stops at the first positional;
// a "--" still ends the flags, and what follows is positional as is. Then
// every flag not given on the command line is read from its environment
// variable (see envName) when that is set and non-empty. Afterwards
// fs.Args() holds the positional arguments in order.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...) // "--" ended the flags
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v := os.Getenv(name); v != "" {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("%s: %w", name, setErr)
			}
		}
	})
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
		return err
	}
	// Parsing "--" and the positionals alone leaves exactly them in fs.Args().
	return fs.Parse(append([]string{"--"}, positional...))
}
