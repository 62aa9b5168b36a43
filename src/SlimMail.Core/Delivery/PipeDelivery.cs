using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using SlimMail.Processes;
using SlimMail.Smtp;

namespace SlimMail.Delivery;

/// <summary>
/// <c>Type: Pipe</c>: runs a program per user with the message on stdin (LF line endings, the
/// <c>Received:</c> header first), as Postfix's pipe(8) and procmail expect. The command is split like a
/// shell would split it, but no shell runs: <c>{user}</c>, <c>{recipient}</c> and <c>{sender}</c> are
/// replaced inside the words afterwards, so a placeholder never becomes more than its one argument. Exit 0
/// is delivered; 75 (EX_TEMPFAIL) or running past the timeout (the program and its descendants are killed)
/// is a temporary failure; anything else is permanent, logged with the first line of the program's stderr.
/// </summary>
public sealed partial class PipeDelivery : IDeliveryAgent
{
    private const int ExitTemporaryFailure = 75;

    private static readonly SmtpReply DashRecipient = new(550, "5.1.3", "Recipient address rejected: may not begin with '-' for this mailbox");
    private static readonly SmtpReply DashSender = new(553, "5.1.7", "Sender address rejected: may not begin with '-' for this mailbox");

    private readonly IReadOnlyList<string> _command;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    /// <summary>Creates the delivery.</summary>
    /// <param name="command">The command line, e.g. <c>/usr/bin/procmail -d {user}</c>.</param>
    /// <param name="timeout">How long the program may wait for its input between writes, and may run after the end of the message.</param>
    /// <param name="logger">Where failures are logged with the program's first line of stderr.</param>
    public PipeDelivery(string command, TimeSpan timeout, ILogger logger)
    {
        _command = CommandLine.Split(command);
        if (_command.Count == 0)
        {
            throw new ArgumentException("The command is empty.", nameof(command));
        }

        _timeout = timeout;
        _logger = logger;
    }

    /// <inheritdoc />
    public string DeliveryType => "pipe";

    /// <inheritdoc />
    public bool WritesForManyUsers => false;

    /// <summary>
    /// Refuses addresses that begin with <c>-</c>, as Postfix does by default (<c>allow_min_user = no</c>):
    /// a program may read a substituted address as an option however it is quoted.
    /// </summary>
    public SmtpReply? CheckRecipient(MailAddress? sender, MailAddress recipient)
    {
        ArgumentNullException.ThrowIfNull(recipient);
        if (recipient.LocalPart.StartsWith('-'))
        {
            return DashRecipient;
        }

        return sender is not null && sender.LocalPart.StartsWith('-') ? DashSender : null;
    }

    /// <inheritdoc />
    public async ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(recipients);
        var programs = new Program[recipients.Count];
        // Starting a program holds the calling thread until the child has called exec (the runtime uses vfork):
        // 0.9 ms by median under load here (docs/benchmarks.md), during which a socket engine thread would serve
        // none of its other connections. So the programs start on a disk thread (or here, for a lone session).
        try
        {
            await BlockingIo.RunAsync(() =>
            {
                for (int i = 0; i < recipients.Count; i++)
                {
                    programs[i] = Start(context, recipients[i]);
                }
            }).ConfigureAwait(false);
        }
        catch
        {
            // No writer will own the programs already started: they must not wait for input that never comes
            // (or, once the pipes are finalized, deliver an empty message).
            foreach (Program? started in programs)
            {
                started?.Process?.Kill();
                started?.Process?.Dispose();
            }

            throw;
        }

        // Logged here, back in the session's context, so that the line carries the session's scope.
        foreach (Program program in programs)
        {
            if (program.Process is null)
            {
                LogCannotStart(_logger, context.QueueId, program.User, program.Name);
            }
        }

        return new Writer(this, context, programs);
    }

    /// <summary>The argument list for one delivery: placeholders replaced inside each word, never splitting it.</summary>
    internal static string[] Expand(IReadOnlyList<string> command, string user, string recipient, string sender)
    {
        string[] arguments = new string[command.Count];
        for (int i = 0; i < command.Count; i++)
        {
            string word = command[i];
            arguments[i] = word.Contains('{', StringComparison.Ordinal)
                ? word.Replace("{user}", Clean(user), StringComparison.Ordinal)
                    .Replace("{recipient}", Clean(recipient), StringComparison.Ordinal)
                    .Replace("{sender}", Clean(sender), StringComparison.Ordinal)
                : word;
        }

        return arguments;
    }

    // The SMTP parser admits no control characters in an address; this keeps it so whatever the caller.
    private static string Clean(string value)
    {
        if (!value.AsSpan().ContainsAnyInRange('\0', '\x1f') && !value.Contains('\x7f', StringComparison.Ordinal))
        {
            return value;
        }

        var text = new StringBuilder(value.Length);
        foreach (char c in value)
        {
            if (!char.IsControl(c))
            {
                text.Append(c);
            }
        }

        return text.ToString();
    }

    private Program Start(MailTransactionContext context, DeliveryRecipient recipient)
    {
        string sender = context.Sender?.ToString() ?? "";
        string address = recipient.Address.ToString();
        string[] arguments = Expand(_command, recipient.User, address, sender);
        ChildProcess? process = ChildProcess.TryStart(arguments,
        [
            new("SLIMMAIL_SENDER", Clean(sender)),
            new("SLIMMAIL_RECIPIENT", Clean(address)),
            new("SLIMMAIL_USER", Clean(recipient.User)),
        ]);
        return new Program(recipient.User, arguments[0], process);
    }

    private sealed class Program(string user, string name, ChildProcess? process)
    {
        public string User { get; } = user;

        /// <summary>The program's path, as the command names it (for the log).</summary>
        public string Name { get; } = name;

        public ChildProcess? Process { get; } = process;

        // The program stopped taking input (it exited or closed stdin); the rest of the message is not for it.
        public bool InputClosed { get; set; } = process is null;

        public bool TimedOut { get; set; }
    }

    private sealed class Writer : IDeliveryWriter
    {
        private readonly PipeDelivery _owner;
        private readonly MailTransactionContext _context;
        private readonly Program[] _programs;
        private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);

        public Writer(PipeDelivery owner, MailTransactionContext context, Program[] programs)
        {
            _owner = owner;
            _context = context;
            _programs = programs;
        }

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            // Bare CRs never reach a committed message (the engine rejects them), so every CR is half a CRLF.
            while (!data.IsEmpty)
            {
                int length = 0;
                int taken = 0;
                ReadOnlySpan<byte> source = data.Span;
                Span<byte> target = _buffer!;
                while (taken < source.Length && length < target.Length)
                {
                    ReadOnlySpan<byte> rest = source[taken..];
                    int cr = rest.IndexOf((byte)'\r');
                    int run = Math.Min(cr < 0 ? rest.Length : cr, target.Length - length);
                    rest[..run].CopyTo(target[length..]);
                    length += run;
                    taken += run;
                    if (cr == run)
                    {
                        taken++;
                    }
                }

                data = data[taken..];
                await WriteToAllAsync(_buffer!.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }
        }

        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            DeliveryOutcome worst = DeliveryOutcome.Delivered;
            foreach (Program program in _programs)
            {
                DeliveryOutcome outcome = await FinishAsync(program, cancellationToken).ConfigureAwait(false);
                if (outcome > worst)
                {
                    worst = outcome;
                }
            }

            return worst;
        }

        public ValueTask DisposeAsync()
        {
            foreach (Program program in _programs)
            {
                // A program still running when the message is abandoned must not deliver half of it.
                if (program.Process is { } process)
                {
                    if (!program.TimedOut && !HasExited(process))
                    {
                        process.Kill();
                    }

                    process.Dispose();
                }
            }

            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }

            return default;
        }

        private static bool HasExited(ChildProcess process)
        {
            try
            {
                _ = process.ExitCode;
                return true;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }

        // Each write must be taken within the timeout: a program that neither reads nor exits is killed, and
        // the session goes on reading the message.
        private async ValueTask WriteToAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            foreach (Program program in _programs)
            {
                if (program.InputClosed)
                {
                    continue;
                }

                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_owner._timeout);
                try
                {
                    program.InputClosed = !await program.Process!.TryWriteAsync(data, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    program.Process!.Kill();
                    program.TimedOut = true;
                    program.InputClosed = true;
                }
            }
        }

        private async ValueTask<DeliveryOutcome> FinishAsync(Program program, CancellationToken cancellationToken)
        {
            if (program.Process is not { } process)
            {
                return DeliveryOutcome.TemporaryFailure;
            }

            if (!program.TimedOut)
            {
                process.CloseInput();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_owner._timeout);
                try
                {
                    await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    process.Kill();
                    program.TimedOut = true;
                }
            }

            if (program.TimedOut)
            {
                LogTimedOut(_owner._logger, _context.QueueId, program.User, _owner._timeout);
                return DeliveryOutcome.TemporaryFailure;
            }

            int exitCode = process.ExitCode;
            if (exitCode == 0)
            {
                return DeliveryOutcome.Delivered;
            }

            LogFailed(_owner._logger, _context.QueueId, program.User, exitCode, process.FirstErrorLine ?? "");
            return exitCode == ExitTemporaryFailure ? DeliveryOutcome.TemporaryFailure : DeliveryOutcome.PermanentFailure;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{QueueId}: pipe delivery for {User}: cannot start {Program}")]
    private static partial void LogCannotStart(ILogger logger, string queueId, string user, string program);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: pipe delivery for {User} timed out after {Timeout}; the program was killed")]
    private static partial void LogTimedOut(ILogger logger, string queueId, string user, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: pipe delivery for {User} exited with {ExitCode}: {Stderr}")]
    private static partial void LogFailed(ILogger logger, string queueId, string user, int exitCode, string stderr);
}
