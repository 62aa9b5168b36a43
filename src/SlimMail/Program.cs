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

var json = new Option<bool>("--json") { Description = "Print the queue as JSON (for scripts)" };
var list = new Command("list", "One line per queued message (id first), then each recipient with its state and last error") { configOption, json };
list.TreatUnmatchedTokensAsErrors = false;
list.SetAction(result => QueueCommand.List(result.GetValue(configOption), result.GetValue(json), result.UnmatchedTokens));
var flush = new Command("flush", "Ask the running server to retry every pending recipient now") { configOption };
flush.TreatUnmatchedTokensAsErrors = false;
flush.SetAction(result => QueueCommand.Flush(result.GetValue(configOption), result.UnmatchedTokens));
var queueId = new Argument<string>("ID") { Description = "The queue id, as queue list prints it" };
var delete = new Command("delete", "Remove a message from the queue without delivering it") { configOption, queueId };
delete.TreatUnmatchedTokensAsErrors = false;
delete.SetAction(result => QueueCommand.Delete(result.GetValue(configOption), result.GetValue(queueId)!, result.UnmatchedTokens));
var queue = new Command("queue", "Inspect and drive the outbound queue") { list, flush, delete };

// Listed for --help; handled above.
var sendmail = new Command("sendmail", "Submit a message on stdin to the local server, like sendmail [-t] [-f FROM] [-F NAME] [-i] [RCPT...]");

var root = new RootCommand("SlimMail: a slim, fast, secure SMTP and POP3 server") { serve, checkConfig, hashPassword, queue, sendmail };

ParseResult parsed = root.Parse(args);
// The host handles SIGINT/SIGTERM itself and drains within ShutdownTimeout; the parser must not cut that short.
int exit = await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
return parsed.Errors.Count > 0 ? ExitCodes.UserError : exit;
