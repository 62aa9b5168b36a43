using SlimMail.Auth;

namespace SlimMail.Tests.Core;

public class PasswordHasherTests
{
    [Fact]
    public void A_hash_verifies_its_password_and_no_other()
    {
        string hash = PasswordHasher.Hash("correct horse", iterations: 1000);
        Assert.StartsWith("$pbkdf2-sha256$i=1000$", hash);
        Assert.True(PasswordHasher.Verify("correct horse", hash));
        Assert.False(PasswordHasher.Verify("correct horsE", hash));
    }

    [Fact]
    public void New_hashes_use_at_least_600000_iterations_and_a_fresh_salt()
    {
        string a = PasswordHasher.Hash("x");
        string b = PasswordHasher.Hash("x");
        Assert.StartsWith("$pbkdf2-sha256$i=600000$", a);
        Assert.NotEqual(a, b);
    }

    [Theory]
    [InlineData("")]
    [InlineData("plaintext")]
    [InlineData("$pbkdf2-sha256$i=0$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==")]
    [InlineData("$pbkdf2-sha256$i=10$not base64$AAAA")]
    public void Malformed_hashes_never_verify(string hash)
    {
        Assert.False(PasswordHasher.IsValidHash(hash));
        Assert.False(PasswordHasher.Verify("x", hash));
    }
}
