using System.CommandLine;
using SlimMail.Host.Commands;

// sendmail's flags (-t, -oi, -F name, -fFROM) follow sendmail's conventions, not System.CommandLine's.
if (args.Length > 0 && args[0] == "sendmail")
{
    return await SendmailCommand.RunAsync(args[1..], Console.In).ConfigureAwait(false);
}

var configOption = new Option<string?>("--config") { Description = "The JSON configuration file (default /etc/slimmail/slimmail.json if it exists)" };

var serve = new Command("serve", "Run the configured listeners until SIGINT/SIGTERM") { configOption };
serve.TreatUnmatchedTokensAsErrors = false;
serve.SetAction((result, _) => ServeCommand.RunAsync(result.GetValue(configOption), result.UnmatchedTokens));

var checkConfig = new Command("check-config", "Validate the configuration; print every problem with its key") { configOption };
checkConfig.TreatUnmatchedTokensAsErrors = false;
checkConfig.SetAction(result => CheckConfigCommand.Run(result.GetValue(configOption), result.UnmatchedTokens));

var hashPassword = new Command("hash-password", "Read one password line on stdin and print a hash for Users.*.PasswordHash");
hashPassword.SetAction(_ => HashPasswordCommand.Run());

// Listed for --help; handled above.
var sendmail = new Command("sendmail", "Submit a message on stdin to the local server, like sendmail [-t] [-f FROM] [-F NAME] [-i] [RCPT...]");

var root = new RootCommand("SlimMail: a slim, fast, secure SMTP and POP3 server") { serve, checkConfig, hashPassword, sendmail };

ParseResult parsed = root.Parse(args);
// The host handles SIGINT/SIGTERM itself and drains within ShutdownTimeout; the parser must not cut that short.
int exit = await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
return parsed.Errors.Count > 0 ? ExitCodes.UserError : exit;
