package main

// Temporary stand-ins until flagenv.go, twiml.go, simulate.go and demo.go land; delete this file then.

import (
	"context"
	"flag"
	"io"
	"os"
	"strings"
)

func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv("IVRPAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))); ok && err == nil {
			err = fs.Set(f.Name, v)
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func runTwiML(ctx context.Context, args []string, stdout, stderr io.Writer) int    { return 2 }
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int { return 2 }
