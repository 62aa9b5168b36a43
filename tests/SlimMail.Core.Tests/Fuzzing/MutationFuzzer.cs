using System.Text;

namespace SlimMail.Tests.Core.Fuzzing;

/// <summary>
/// A small mutation fuzzer: starts from a corpus of valid inputs and applies random byte-level mutations
/// (flips, protocol tokens, deletions, duplications, splices) biased toward what breaks mail parsers:
/// CR, LF, NUL, dots at line starts, brackets, quotes and long runs. Deterministic for a seed, so a
/// failure prints the seed and the input that reproduces it.
/// </summary>
internal sealed class MutationFuzzer
{
    private static readonly byte[][] Tokens =
    [
        "\r\n"u8.ToArray(), "\n"u8.ToArray(), "\r"u8.ToArray(), "\0"u8.ToArray(), "\r\n.\r\n"u8.ToArray(), "\n.\n"u8.ToArray(),
        "\r.\r"u8.ToArray(), "."u8.ToArray(), ".."u8.ToArray(), "<"u8.ToArray(), ">"u8.ToArray(), "@"u8.ToArray(), "\""u8.ToArray(),
        ":"u8.ToArray(), " "u8.ToArray(), "="u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), "\\"u8.ToArray(), ","u8.ToArray(),
        "MAIL FROM:<a@b.test>\r\n"u8.ToArray(), "RCPT TO:<x@y.test>\r\n"u8.ToArray(), "DATA\r\n"u8.ToArray(), "BDAT 5 LAST\r\n"u8.ToArray(),
        "BDAT 0\r\n"u8.ToArray(), "RSET\r\n"u8.ToArray(), "EHLO x\r\n"u8.ToArray(), "STARTTLS\r\n"u8.ToArray(), "AUTH PLAIN\r\n"u8.ToArray(),
        "SIZE=99999999999"u8.ToArray(), "SMTPUTF8"u8.ToArray(), "IPv6:"u8.ToArray(), "ü"u8.ToArray(), "\xff\xfe"u8.ToArray(),
        "RETR 1\r\n"u8.ToArray(), "TOP 1 0\r\n"u8.ToArray(), "DELE 1\r\n"u8.ToArray(), "PROXY TCP4 "u8.ToArray(),
    ];

    private readonly Random _random;
    private readonly List<byte[]> _corpus;

    public MutationFuzzer(IEnumerable<byte[]> corpus, int seed)
    {
        _corpus = corpus.ToList();
        _random = new Random(seed);
    }

    /// <summary>Runs <paramref name="target"/> on mutated inputs until the time is up; returns how many ran.</summary>
    public int Run(TimeSpan duration, Action<byte[]> target, int maxLength = 1 << 16)
    {
        var deadline = DateTime.UtcNow + duration;
        int runs = 0;
        while (DateTime.UtcNow < deadline)
        {
            byte[] input = Mutate(_corpus[_random.Next(_corpus.Count)], maxLength);
            try
            {
                target(input);
            }
            catch (Exception e)
            {
                throw new FuzzFailure($"input #{runs} ({input.Length} bytes, base64 {Convert.ToBase64String(input)}): {e.Message}", e);
            }

            runs++;
        }

        return runs;
    }

    public byte[] Mutate(byte[] seed, int maxLength)
    {
        var data = new List<byte>(seed);
        int mutations = 1 + _random.Next(8);
        for (int m = 0; m < mutations; m++)
        {
            int at = data.Count == 0 ? 0 : _random.Next(data.Count + 1);
            switch (_random.Next(8))
            {
                case 0 when data.Count > 0:
                    int i = _random.Next(data.Count);
                    data[i] ^= (byte)(1 << _random.Next(8));
                    break;
                case 1:
                    data.InsertRange(at, Tokens[_random.Next(Tokens.Length)]);
                    break;
                case 2 when data.Count > 0:
                    int start = _random.Next(data.Count);
                    data.RemoveRange(start, Math.Min(data.Count - start, 1 + _random.Next(16)));
                    break;
                case 3 when data.Count > 0:
                    int from = _random.Next(data.Count);
                    int length = Math.Min(data.Count - from, 1 + _random.Next(64));
                    data.InsertRange(at, data.GetRange(from, length));
                    break;
                case 4:
                    data.Insert(at, (byte)_random.Next(256));
                    break;
                case 5:
                    byte[] other = _corpus[_random.Next(_corpus.Count)];
                    int cut = other.Length == 0 ? 0 : _random.Next(other.Length);
                    data.InsertRange(at, other[cut..]);
                    break;
                case 6:
                    data.InsertRange(at, Enumerable.Repeat((byte)"ax.\r\n<"[_random.Next(6)], 1 + _random.Next(3000)));
                    break;
                default:
                    data.InsertRange(at, Encoding.ASCII.GetBytes(_random.Next(-5, 100_000_000).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    break;
            }
        }

        return data.Count > maxLength ? data.GetRange(0, maxLength).ToArray() : data.ToArray();
    }

    public static IEnumerable<byte[]> LoadCorpus(string target)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "Fuzzing", "corpus", target);
        _ = Encoding.UTF8;
        return Directory.GetFiles(directory).Order(StringComparer.Ordinal).Select(File.ReadAllBytes);
    }
}

internal sealed class FuzzFailure : Exception
{
    public FuzzFailure(string message, Exception inner)
        : base(message, inner)
    {
    }

    public FuzzFailure()
    {
    }

    public FuzzFailure(string message)
        : base(message)
    {
    }
}
