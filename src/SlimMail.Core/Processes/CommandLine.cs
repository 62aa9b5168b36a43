using System.Text;

namespace SlimMail.Processes;

/// <summary>Splits a command line the way a POSIX shell would, without running a shell: spaces separate
/// words, single quotes are literal, double quotes allow <c>\"</c> and <c>\\</c>, a backslash escapes outside quotes.</summary>
public static class CommandLine
{
    /// <summary>The words of <paramref name="command"/>; throws <see cref="FormatException"/> for an unterminated quote.</summary>
    public static IReadOnlyList<string> Split(string command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < command.Length; i++)
        {
            char c = command[i];
            switch (c)
            {
                case ' ' or '\t' or '\n':
                    if (inWord)
                    {
                        words.Add(word.ToString());
                        word.Clear();
                        inWord = false;
                    }

                    break;
                case '\'':
                    int close = command.IndexOf('\'', i + 1);
                    if (close < 0)
                    {
                        throw new FormatException("unterminated single quote");
                    }

                    word.Append(command, i + 1, close - i - 1);
                    i = close;
                    inWord = true;
                    break;
                case '"':
                    i++;
                    for (; i < command.Length && command[i] != '"'; i++)
                    {
                        if (command[i] == '\\' && i + 1 < command.Length && command[i + 1] is '"' or '\\' or '$' or '`')
                        {
                            i++;
                        }

                        word.Append(command[i]);
                    }

                    if (i >= command.Length)
                    {
                        throw new FormatException("unterminated double quote");
                    }

                    inWord = true;
                    break;
                case '\\' when i + 1 < command.Length:
                    word.Append(command[++i]);
                    inWord = true;
                    break;
                default:
                    word.Append(c);
                    inWord = true;
                    break;
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }
}
