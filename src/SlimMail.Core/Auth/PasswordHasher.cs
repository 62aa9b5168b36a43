using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SlimMail.Auth;

/// <summary>
/// Password hashes for <c>Users.*.PasswordHash</c>: PBKDF2-HMAC-SHA256 with a random 16-byte salt and
/// 600,000 iterations (OWASP's 2023 figure), in a self-describing text form:
/// <c>$pbkdf2-sha256$i=600000$&lt;salt, base64&gt;$&lt;hash, base64&gt;</c>.
/// </summary>
public static class PasswordHasher
{
    /// <summary>The iteration count of new hashes.</summary>
    public const int Iterations = 600_000;

    private const string Prefix = "$pbkdf2-sha256$";
    private const int SaltSize = 16;
    private const int HashSize = 32;

    /// <summary>Hashes <paramref name="password"/> with a new salt.</summary>
    public static string Hash(string password, int iterations = Iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        byte[] salt = RandomNumberGenerator.GetBytes(SaltSize);
        byte[] hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, HashSize);
        return string.Create(CultureInfo.InvariantCulture, $"{Prefix}i={iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }

    /// <summary>True when <paramref name="encoded"/> is a hash this class can verify.</summary>
    public static bool IsValidHash(string encoded) => TryParse(encoded, out _, out _, out _);

    /// <summary>Checks a password against a hash in constant time. False for a malformed hash.</summary>
    public static bool Verify(string password, string encoded)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (!TryParse(encoded, out int iterations, out byte[]? salt, out byte[]? expected))
        {
            return false;
        }

        byte[] actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    private static bool TryParse(string? encoded, out int iterations, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? salt,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? hash)
    {
        iterations = 0;
        salt = null;
        hash = null;
        if (encoded is null || !encoded.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        string[] parts = encoded[Prefix.Length..].Split('$');
        if (parts.Length != 3 || !parts[0].StartsWith("i=", StringComparison.Ordinal)
            || !int.TryParse(parts[0].AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out iterations)
            || iterations < 1)
        {
            return false;
        }

        try
        {
            salt = Convert.FromBase64String(parts[1]);
            hash = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            return false;
        }

        return salt.Length >= 8 && hash.Length >= 16;
    }
}
