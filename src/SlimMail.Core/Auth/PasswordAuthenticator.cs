using System.Collections.Frozen;

namespace SlimMail.Auth;

/// <summary>Checks passwords against <c>Users.*.PasswordHash</c> (and, optionally, extra plain secrets such as the zero-config user's).</summary>
public sealed class PasswordAuthenticator : IAuthenticator
{
    // Verified for unknown users so that the time taken does not reveal which users exist.
    private static readonly Lazy<string> DummyHash = new(() => PasswordHasher.Hash(Guid.NewGuid().ToString()));

    private readonly FrozenDictionary<string, string> _hashes;
    private readonly Func<string, string?>? _plainSecret;

    /// <summary>Creates the authenticator.</summary>
    /// <param name="hashes">User name → hash from <c>slimmail hash-password</c>.</param>
    /// <param name="plainSecret">For users without a hash: a secret kept in a protected file (the zero-config user <c>local</c>), or null.</param>
    public PasswordAuthenticator(IReadOnlyDictionary<string, string> hashes, Func<string, string?>? plainSecret = null)
    {
        _hashes = hashes.ToFrozenDictionary(StringComparer.Ordinal);
        _plainSecret = plainSecret;
    }

    /// <inheritdoc />
    public async ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        string? hash = _hashes.GetValueOrDefault(user);
        if (hash is null && _plainSecret?.Invoke(user) is { Length: > 0 } secret)
        {
            bool equal = System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(secret), System.Text.Encoding.UTF8.GetBytes(password));
            return equal ? AuthResult.Success(user) : AuthResult.Failure;
        }

        // A hash check is deliberately slow (hundreds of milliseconds of CPU): it runs on the thread pool, never on
        // the socket thread that called, which serves many other connections (inline socket completions).
        bool valid = await Task.Run(() => PasswordHasher.Verify(password, hash ?? DummyHash.Value), CancellationToken.None).ConfigureAwait(false);
        return hash is not null && valid ? AuthResult.Success(user) : AuthResult.Failure;
    }
}
