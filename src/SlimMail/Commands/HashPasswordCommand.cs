using System.Text;
using SlimMail.Auth;

namespace SlimMail.Host.Commands;

/// <summary><c>slimmail hash-password</c>: reads one password line on stdin and prints its hash.</summary>
internal static class HashPasswordCommand
{
    public static int Run()
    {
        string? password = Console.IsInputRedirected ? Console.In.ReadLine() : ReadHidden();
        if (string.IsNullOrEmpty(password))
        {
            Console.Error.WriteLine("error: no password on standard input");
            return ExitCodes.UserError;
        }

        Console.WriteLine(PasswordHasher.Hash(password));
        return ExitCodes.Success;
    }

    private static string ReadHidden()
    {
        Console.Error.Write("Password: ");
        var password = new StringBuilder();
        while (true)
        {
            ConsoleKeyInfo key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                Console.Error.WriteLine();
                return password.ToString();
            }

            if (key.Key == ConsoleKey.Backspace)
            {
                if (password.Length > 0)
                {
                    password.Length--;
                }
            }
            else if (!char.IsControl(key.KeyChar))
            {
                password.Append(key.KeyChar);
            }
        }
    }
}
