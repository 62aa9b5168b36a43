using System.Text;
using SlimMail.Processes;

namespace SlimMail.Auth;

/// <summary>
/// <c>Authentication.Type: External</c>: runs a program with the user name on the first line of stdin and
/// the password on the second, never in its arguments or environment. Exit 0 accepts, 1 rejects, anything
/// else (or running past the timeout, when its process group is killed) is a temporary failure.
/// </summary>
public sealed class ExternalAuthenticator : IAuthenticator
{
    private readonly IReadOnlyList<string> _command;
    private readonly TimeSpan _timeout;

    /// <summary>Creates the authenticator for <paramref name="command"/> (split like a shell, no shell).</summary>
    public ExternalAuthenticator(string command, TimeSpan timeout)
    {
        _command = CommandLine.Split(command);
        if (_command.Count == 0)
        {
            throw new ArgumentException("The command is empty.", nameof(command));
        }

        _timeout = timeout;
    }

    /// <inheritdoc />
    public async ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        // A newline in either would let a client forge the second line.
        if (user.Length == 0 || user.AsSpan().IndexOfAny('\n', '\r', '\0') >= 0 || password.AsSpan().IndexOfAny('\n', '\r', '\0') >= 0)
        {
            return AuthResult.Failure;
        }

        // Starting a process (fork and exec) takes milliseconds: not on the calling socket thread.
        using ChildProcess? process = await Task.Run(() => ChildProcess.TryStart(_command), CancellationToken.None).ConfigureAwait(false);
        if (process is null)
        {
            return AuthResult.TemporaryFailure;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            // A program that exits without reading is fine: its exit code still decides.
            if (await process.TryWriteAsync(Encoding.UTF8.GetBytes(user + "\n" + password + "\n"), timeout.Token).ConfigureAwait(false))
            {
                process.CloseInput();
            }

            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            return process.ExitCode switch
            {
                0 => AuthResult.Success(user),
                1 => AuthResult.Failure,
                _ => AuthResult.TemporaryFailure,
            };
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            return AuthResult.TemporaryFailure;
        }
    }
}
