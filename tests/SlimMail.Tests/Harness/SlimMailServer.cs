using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace SlimMail.Tests.Harness;

/// <summary>
/// The real <c>slimmail</c> program in a temporary directory: started with a configuration (or none),
/// its listening ports read from its log, stopped by SIGTERM or SIGKILL.
/// </summary>
internal sealed partial class SlimMailServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _expectedListeners;

    private readonly bool _ownsDirectory;

    private SlimMailServer(string directory, Process process, bool ownsDirectory)
    {
        Directory = directory;
        _process = process;
        _ownsDirectory = ownsDirectory;
    }

    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    public List<int> SmtpPorts { get; } = [];

    public List<int> Pop3Ports { get; } = [];

    private int _expectedPop3;

    public int Port => SmtpPorts[0];

    public int ProcessId => _process.Id;

    public IEnumerable<string> Log => _log;

    public static string SlimMailDll => Path.Combine(AppContext.BaseDirectory, "slimmail.dll");

    /// <summary>Starts slimmail serve. A null config means zero-configuration mode (run in its own directory).</summary>
    public static async Task<SlimMailServer> StartAsync(string? configJson, IEnumerable<string>? extraArguments = null,
        IDictionary<string, string>? environment = null, int listeners = 1, string? directory = null, int? pop3Listeners = null)
    {
        bool ownsDirectory = directory is null;
        directory ??= System.IO.Directory.CreateTempSubdirectory("slimmail-e2e-").FullName;
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        info.ArgumentList.Add(SlimMailDll);
        info.ArgumentList.Add("serve");
        if (configJson is not null)
        {
            string configFile = Path.Combine(directory, "slimmail.json");
            await File.WriteAllTextAsync(configFile, configJson.Replace("$DATA", Path.Combine(directory, "data").Replace("\\", "\\\\", StringComparison.Ordinal), StringComparison.Ordinal));
            info.ArgumentList.Add("--config");
            info.ArgumentList.Add(configFile);
        }

        foreach (string argument in extraArguments ?? [])
        {
            info.ArgumentList.Add(argument);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        var server = new SlimMailServer(directory, process, ownsDirectory) { _expectedListeners = listeners, _expectedPop3 = pop3Listeners ?? (configJson is null ? 1 : 0) };
        process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => server._ready.TrySetException(new InvalidOperationException("slimmail exited: " + string.Join("\n", server._log)));
        await server._ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return server;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        _log.Enqueue(line);
        Match match = ListeningLine().Match(line);
        if (match.Success)
        {
            lock (SmtpPorts)
            {
                int port = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                (match.Groups[1].Success ? Pop3Ports : SmtpPorts).Add(port);
                if (SmtpPorts.Count == _expectedListeners && Pop3Ports.Count == _expectedPop3)
                {
                    _ready.TrySetResult();
                }
            }
        }
    }

    public string MaildirNew(string user) => Path.Combine(DataDirectory, "mail", user, "new");

    public string[] Messages(string user) =>
        System.IO.Directory.Exists(MaildirNew(user)) ? System.IO.Directory.GetFiles(MaildirNew(user)) : [];

    public async Task<int> TerminateAsync()
    {
        await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return _process.ExitCode;
    }

    public async Task KillAsync()
    {
        await ProcessRunner.RunAsync("kill", ["-KILL", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task<string> WaitForLogAsync(string fragment, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < deadline)
        {
            string? line = _log.FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"no log line with '{fragment}':\n" + string.Join("\n", _log));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (!_ownsDirectory)
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex(@"(pop3 )?listening on [^ ]*:(\d+)( \(|$|"")")]
    private static partial Regex ListeningLine();
}
