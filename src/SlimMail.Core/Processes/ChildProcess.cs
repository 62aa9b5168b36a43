using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace SlimMail.Processes;

/// <summary>
/// A program SlimMail runs (an external authenticator, a pipe delivery): started without a shell from its
/// argument list, stdin written by us, stdout discarded, the first line of stderr kept for the log, and
/// killed with all its descendants when it runs too long.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private const int MaxErrorLine = 300;

    private readonly Process _process;
    private readonly Task _drainOutput;
    private readonly Task<string?> _firstErrorLine;

    private ChildProcess(Process process)
    {
        _process = process;
        _drainOutput = process.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
        _firstErrorLine = ReadFirstLineAsync(process.StandardError.BaseStream);
    }

    /// <summary>The program's stdin.</summary>
    public Stream Input => _process.StandardInput.BaseStream;

    /// <summary>The exit status, once <see cref="WaitForExitAsync"/> completed.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <paramref name="arguments"/> (program first); null when the program cannot be started.</summary>
    public static ChildProcess? TryStart(IReadOnlyList<string> arguments, IEnumerable<KeyValuePair<string, string>>? environment = null)
    {
        var info = new ProcessStartInfo(arguments[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        for (int i = 1; i < arguments.Count; i++)
        {
            info.ArgumentList.Add(arguments[i]);
        }

        if (environment is not null)
        {
            foreach ((string name, string value) in environment)
            {
                info.Environment[name] = value;
            }
        }

        var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception)
        {
            process.Dispose();
            return null;
        }

        return new ChildProcess(process);
    }

    /// <summary>Writes to stdin; false when the program closed its end (it exited or stopped reading).</summary>
    public async ValueTask<bool> TryWriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            await Input.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Closes stdin, so the program sees the end of its input.</summary>
    public void CloseInput()
    {
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // Closing flushes; a program that already went away cannot take the rest.
        }
    }

    /// <summary>Waits for the program to exit and its output to be drained.</summary>
    public async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        // A descendant that inherited stdout may keep the pipe open; it does not hold up the result.
        await Task.WhenAny(Task.WhenAll(_drainOutput, _firstErrorLine), Task.Delay(TimeSpan.FromSeconds(1), cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>The first line the program wrote to stderr, if it wrote one by now.</summary>
    public string? FirstErrorLine => _firstErrorLine.IsCompletedSuccessfully ? _firstErrorLine.Result : null;

    /// <summary>Kills the program and every process it started.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        catch (Win32Exception)
        {
            // Already exited, or not ours to kill any more.
        }
    }

    public void Dispose()
    {
        CloseInput();
        _process.Dispose();
    }

    // Reads stderr to its end (so the program never blocks on it) and keeps only the start of the first line.
    private static async Task<string?> ReadFirstLineAsync(Stream stream)
    {
        byte[] buffer = new byte[MaxErrorLine];
        int length = 0;
        bool lineDone = false;
        byte[] sink = new byte[4096];
        try
        {
            while (true)
            {
                int read = lineDone
                    ? await stream.ReadAsync(sink).ConfigureAwait(false)
                    : await stream.ReadAsync(buffer.AsMemory(length)).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                if (!lineDone)
                {
                    int newline = buffer.AsSpan(length, read).IndexOfAny((byte)'\n', (byte)'\r');
                    length = newline >= 0 ? length + newline : length + read;
                    lineDone = newline >= 0 || length == buffer.Length;
                }
            }
        }
        catch (IOException)
        {
            // The pipe broke; what was read still tells the story.
        }

        if (length == 0)
        {
            return null;
        }

        // Log-safe: control characters from a program's output must not forge log lines.
        var text = new StringBuilder(Encoding.UTF8.GetString(buffer, 0, length));
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsControl(text[i]))
            {
                text[i] = ' ';
            }
        }

        return text.ToString();
    }
}
