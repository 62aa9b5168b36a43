using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SlimMail.Samples;

/// <summary>
/// The file format of <see cref="EncryptingMessageHandler"/>: the magic <c>SMENC1</c>, a 7-byte random nonce
/// prefix, then chunks of at most 64 KB, each <c>[4-byte length][ciphertext][16-byte AES-GCM tag]</c>. A chunk's
/// nonce is the prefix, its 4-byte index and a final-chunk flag (the STREAM construction), so chunks can
/// neither be reordered nor the file cut short without decryption failing.
/// </summary>
public static class EncryptedMessageFile
{
    /// <summary>The largest plaintext chunk.</summary>
    public const int ChunkSize = 64 * 1024;

    /// <summary>The bytes every file starts with.</summary>
    public static ReadOnlySpan<byte> Magic => "SMENC1"u8;

    internal const int PrefixSize = 7;
    internal const int TagSize = 16;

    internal static void Nonce(Span<byte> nonce, ReadOnlySpan<byte> prefix, uint index, bool last)
    {
        prefix.CopyTo(nonce);
        BinaryPrimitives.WriteUInt32BigEndian(nonce[PrefixSize..], index);
        nonce[11] = last ? (byte)1 : (byte)0;
    }

    /// <summary>Decrypts a whole file; throws <see cref="CryptographicException"/> if it was altered or cut.</summary>
    public static byte[] Decrypt(Stream file, byte[] key)
    {
        ArgumentNullException.ThrowIfNull(file);
        using var aes = new AesGcm(key, TagSize);
        Span<byte> header = stackalloc byte[6 + PrefixSize];
        file.ReadExactly(header);
        if (!header[..6].SequenceEqual(Magic))
        {
            throw new CryptographicException("not an encrypted message file");
        }

        byte[] prefix = header[6..].ToArray();
        using var plain = new MemoryStream();
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> lengthBytes = stackalloc byte[4];
        for (uint index = 0; ; index++)
        {
            file.ReadExactly(lengthBytes);
            int length = BinaryPrimitives.ReadInt32BigEndian(lengthBytes);
            if (length is < 0 or > ChunkSize)
            {
                throw new CryptographicException("bad chunk length");
            }

            byte[] cipher = new byte[length + TagSize];
            file.ReadExactly(cipher);
            bool last = file.Position == file.Length;
            Nonce(nonce, prefix, index, last);
            byte[] chunk = new byte[length];
            aes.Decrypt(nonce, cipher.AsSpan(0, length), cipher.AsSpan(length), chunk);
            plain.Write(chunk);
            if (last)
            {
                return plain.ToArray();
            }
        }
    }
}
