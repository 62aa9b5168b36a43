using System.Globalization;

namespace SlimMail.Load;

/// <summary>The command line, smtp-source's letters where it has one.</summary>
internal sealed class LoadOptions
{
    public int Sessions { get; private set; } = 1;

    public int Messages { get; private set; } = 100;

    public int Size { get; private set; } = 1024;

    /// <summary>-d: all of a session's messages over one connection (smtp-source's -d).</summary>
    public bool Reuse { get; private set; }

    /// <summary>-P: MAIL, RCPT and DATA sent in one write (RFC 2920).</summary>
    public bool Pipelining { get; private set; }

    public string From { get; private set; } = "sender@client.test";

    public string To { get; private set; } = "rcpt@bench.test";

    /// <summary>-u: the POP3 user; "{0}" in it is replaced by the session number (1-based).</summary>
    public string User { get; private set; } = "local";

    public string Password { get; private set; } = "";

    /// <summary>-L: POP3 sessions log in and quit (what logging in costs the server, to subtract).</summary>
    public bool LoginOnly { get; private set; }

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "-s": options.Sessions = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "-m": options.Messages = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "-l": options.Size = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "-d": options.Reuse = true; break;
                case "-P": options.Pipelining = true; break;
                case "-L": options.LoginOnly = true; break;
                case "-f": options.From = Next(); break;
                case "-t": options.To = Next(); break;
                case "-u": options.User = Next(); break;
                case "-w": options.Password = Next(); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        return options;
    }
}

/// <summary>What a run did; <paramref name="Seconds"/> when the run timed itself (else the whole run counts).</summary>
internal readonly record struct LoadResult(long Messages, long Bytes, double Seconds = 0);
